"""The pybuild command line.  The only place that prints errors and chooses exit codes.

Exit codes: 0 success; 1 the operation failed (a RUN exited non-zero, a source or image is
missing, an archive does not verify, …); 2 bad usage or a Buildfile error; 70 internal error
(a bug: please report it); 130 interrupted (SIGINT); 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from builder import __version__
from builder.errors import PybuildError

COMMANDS = ("build", "import", "load", "save", "images", "history", "inspect", "rmi", "tag", "parse")
EXIT_INTERNAL = 70


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that cleanup (finally blocks) runs."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    root = None
    while argv and (argv[0] == "--root" or argv[0].startswith("--root=")):   # a global option
        root = argv.pop(0).partition("=")[2] or (argv.pop(0) if argv else "")
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "build")                   # `pybuild -f Buildfile -t x .`
    args = _parser().parse_args(argv)
    args.root = args.root or root
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.func(args) or 0
    except PybuildError as e:
        print(f"pybuild: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("pybuild: interrupted; the build was stopped and cleaned up", file=sys.stderr)
        return 130
    except Terminated:
        print("pybuild: terminated; the build was stopped and cleaned up", file=sys.stderr)
        return 143
    except BrokenPipeError:
        return 1
    except Exception as e:  # noqa: BLE001 - the one place that reports bugs
        import traceback
        traceback.print_exc()
        print(f"pybuild: internal error: {e!r} (this is a bug in pybuild)", file=sys.stderr)
        return EXIT_INTERNAL


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _store(args: argparse.Namespace):
    from builder.store import Store, default_root
    return Store(Path(args.root) if args.root else default_root())


# -- commands ------------------------------------------------------------------------------
def cmd_build(args: argparse.Namespace) -> int:
    from builder.build import Build, BuildOptions
    from builder.buildfile.parse import parse_file
    from builder.buildlog import BuildLog

    context = Path(args.context)
    buildfile = Path(args.file) if args.file else context / "Buildfile"
    if not args.file and not buildfile.exists() and (context / "Dockerfile").exists():
        buildfile = context / "Dockerfile"
    parsed = parse_file(buildfile)
    log = BuildLog(quiet=args.quiet)
    options = BuildOptions(buildfile=buildfile, context=context, tags=tuple(args.tag), no_cache=args.no_cache)
    image_id = Build(_store(args), options, log).run(parsed)
    if args.quiet:
        print(image_id)
    else:
        print(f"Successfully built {image_id[7:19]}")
        for tag in args.tag:
            from builder.store import normalize_tag
            print(f"Successfully tagged {normalize_tag(tag)}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from builder.export.rootfs_import import import_rootfs
    print(import_rootfs(_store(args), Path(args.tarball), args.reference))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from builder.export.docker_archive import load
    for ref, image_id in load(_store(args), Path(args.input)):
        print(f"Loaded image: {ref}" if ref else f"Loaded image ID: {image_id}")
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    from builder.export.docker_archive import save
    save(_store(args), args.images, Path(args.output), fmt=args.format)
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from builder.image import parse_config
    from builder.inspect.history import image_size, render, since
    from builder.buildlog import human_size
    from datetime import datetime, timezone

    store = _store(args)
    now = datetime.now(timezone.utc)
    table = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "LAYERS", "SIZE")]
    for ref, image_id in sorted(store.tags().items()):
        repo, _, tag = ref.rpartition(":")
        cfg = parse_config(store.image_config(image_id))
        table.append((repo, tag, image_id[7:19], since(cfg.created, now), str(len(cfg.diff_ids)),
                      human_size(image_size(store, cfg))))
    print(render(table))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from builder.inspect.history import format_history, history_rows
    store = _store(args)
    rows = history_rows(store, store.resolve(args.image))
    if args.format == "json":
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print(format_history(rows, no_trunc=args.no_trunc))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from builder.digest import chain_ids
    store = _store(args)
    image_id = store.resolve(args.image)
    config = json.loads(store.image_config(image_id))
    diff_ids = config["rootfs"]["diff_ids"]
    out = {
        "Id": image_id,
        "RepoTags": sorted(t for t, i in store.tags().items() if i == image_id),
        "Config": config,
        "Manifest": json.loads(store.image_manifest(image_id)),
        "DiffIDs": diff_ids,
        "ChainIDs": chain_ids(diff_ids),
    }
    print(json.dumps(out, indent=2))
    return 0


def cmd_rmi(args: argparse.Namespace) -> int:
    from builder.store import normalize_tag
    store = _store(args)
    for ref in args.images:
        image_id = store.resolve(ref)
        tags = store.tags()
        # by name: drop that name; by ID: drop every name of the image
        names = [normalize_tag(ref)] if normalize_tag(ref) in tags else \
            sorted(t for t, i in tags.items() if i == image_id)
        for name in names:
            store.remove_tag(name)
            print(f"Untagged: {name}")
        if image_id not in store.tags().values():
            store.remove_image(image_id)
            print(f"Deleted: {image_id}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    store = _store(args)
    store.set_tag(args.target, store.resolve(args.source))
    return 0


def cmd_parse(args: argparse.Namespace) -> int:
    from builder.buildfile.dump import dump
    from builder.buildfile.parse import parse_file
    print(dump(parse_file(Path(args.buildfile))), end="")
    return 0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", help="image store directory (default $PYBUILD_ROOT or /var/lib/pybuild)")
    p = argparse.ArgumentParser(
        prog="pybuild",
        description="Build Dockerfile-style images without a daemon, and see how every layer is made.",
        epilog="`pybuild -f Buildfile -t NAME [CONTEXT]` is short for `pybuild build …`.")
    p.add_argument("--version", action="version", version=f"pybuild {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", parents=[common], help="build an image from a Buildfile")
    b.add_argument("-f", "--file", help="the Buildfile (default CONTEXT/Buildfile)")
    b.add_argument("-t", "--tag", action="append", default=[], help="name[:tag] for the image (repeatable)")
    b.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    b.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    b.add_argument("context", nargs="?", default=".", help="build context directory (default .)")
    b.set_defaults(func=cmd_build)

    i = sub.add_parser("import", parents=[common], help="a rootfs tarball becomes a one-layer image")
    i.add_argument("tarball")
    i.add_argument("reference", nargs="?")
    i.set_defaults(func=cmd_import)

    lo = sub.add_parser("load", parents=[common], help="load a docker-archive or OCI archive")
    lo.add_argument("-i", "--input", required=True)
    lo.set_defaults(func=cmd_load)

    s = sub.add_parser("save", parents=[common], help="save images as one docker-archive + OCI layout tar")
    s.add_argument("images", nargs="+")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--format", choices=("docker", "oci"), default="docker")
    s.set_defaults(func=cmd_save)

    im = sub.add_parser("images", parents=[common], help="list tagged images")
    im.set_defaults(func=cmd_images)

    h = sub.add_parser("history", parents=[common], help="how each layer of an image was made")
    h.add_argument("image")
    h.add_argument("--no-trunc", action="store_true")
    h.add_argument("--format", choices=("table", "json"), default="table")
    h.set_defaults(func=cmd_history)

    ins = sub.add_parser("inspect", parents=[common], help="config, manifest, diffIDs, chain IDs (JSON)")
    ins.add_argument("image")
    ins.set_defaults(func=cmd_inspect)

    r = sub.add_parser("rmi", parents=[common], help="untag and remove images")
    r.add_argument("images", nargs="+")
    r.set_defaults(func=cmd_rmi)

    t = sub.add_parser("tag", parents=[common], help="give an image another name")
    t.add_argument("source")
    t.add_argument("target")
    t.set_defaults(func=cmd_tag)

    pa = sub.add_parser("parse", parents=[common], help="print the parsed instructions of a Buildfile")
    pa.add_argument("--dump", action="store_true", help="(default) dump the parse")
    pa.add_argument("buildfile")
    pa.set_defaults(func=cmd_parse)
    return p
