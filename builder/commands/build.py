"""`pybuild build` (also `pybuild -f Buildfile -t NAME CONTEXT`) and `pybuild parse`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from builder.commands import store_of
from builder.oci.digest import short_id


def cmd_build(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.build.log import BuildLog
    from builder.build.session import Build
    from builder.build.state import BuildOptions
    from builder.store.parsecache import load_buildfile

    context = Path(args.context)
    buildfile = Path(args.file) if args.file else context / "Buildfile"
    if not args.file and not buildfile.exists() and (context / "Dockerfile").exists():
        buildfile = context / "Dockerfile"
    rootless = os.geteuid() != 0
    store = store_of(args)                  # an ordinary user is in a user namespace from here on
    parsed = load_buildfile(store, buildfile)
    # with --explain=json the JSON is the only thing on stdout; the build log goes to stderr
    log = BuildLog(out=sys.stderr if args.explain == "json" else None, quiet=args.quiet)
    if rootless:
        # start-up: only an ordinary user's build
        from builder.layer.userns import single_id_note
        if single_id_note():
            log.warn(single_id_note())
    options = BuildOptions(buildfile=buildfile, context=context, tags=tuple(args.tag),
                           no_cache=args.no_cache, explain=args.explain,
                           source_date_epoch=_source_date_epoch(args.reproducible),
                           build_args=_build_args(args.build_arg), target=args.target,
                           pull=args.pull or os.environ.get("PYBUILD_PULL") or "missing",
                           insecure=args.insecure, cache_from=tuple(args.cache_from),
                           cache_to=args.cache_to, secrets=_secrets(args.secret), ssh=_ssh(args.ssh),
                           snapshotter=_snapshotter(args.snapshotter))
    session = Build(store, options, log)
    image_id = session.run(parsed)
    if args.explain == "json":
        # start-up: only this command needs these
        from builder.build.explain import to_json
        cache = {"hits": session.executor.hits, "steps": len(session.executor.records)}
        print(json.dumps({"image": image_id, "steps": to_json(session.explanations), "cache": cache}, indent=2))
    elif args.quiet:
        print(image_id)
    else:
        print(f"Successfully built {short_id(image_id)}")
        for tag in args.tag:
            # start-up: only this command needs these
            from builder.store.store import normalize_tag
            print(f"Successfully tagged {normalize_tag(tag)}")
    return 0


def _secrets(raw: list[str]) -> tuple:
    if not raw:
        return ()
    # start-up: only a build with --secret needs it
    from builder.build.runmounts import parse_secret
    return tuple(parse_secret(v) for v in raw)


def _ssh(raw: list[str]) -> tuple:
    if not raw:
        return ()
    # start-up: only a build with --ssh needs it
    from builder.build.sshforward import parse_ssh
    return tuple(parse_ssh(v) for v in raw)


def _snapshotter(option: str | None) -> str | None:
    """``--snapshotter``, else $PYBUILD_SNAPSHOTTER (checked here, before anything runs)."""
    # start-up: only this command needs these
    from builder.build.state import SNAPSHOTTERS
    from builder.errors import UsageError
    value = option or os.environ.get("PYBUILD_SNAPSHOTTER") or None
    if value is not None and value not in SNAPSHOTTERS:
        raise UsageError(f"PYBUILD_SNAPSHOTTER={value!r}: use one of {', '.join(SNAPSHOTTERS)}")
    return value


def _build_args(raw: list[str]) -> tuple[tuple[str, str], ...]:
    """``--build-arg K=V``; a bare ``K`` takes K from the environment (skipped if unset), as docker."""
    # start-up: only this command needs these
    from builder.errors import UsageError
    out = []
    for item in raw:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"--build-arg {item!r}: the name is empty (use --build-arg NAME=VALUE)")
        if not eq:
            if key not in os.environ:
                continue
            value = os.environ[key]
        out.append((key, value))
    return tuple(out)


def _source_date_epoch(reproducible: bool) -> int | None:
    """SOURCE_DATE_EPOCH from the environment; ``--reproducible`` alone means epoch 0."""
    # start-up: only this command needs these
    from builder.errors import UsageError
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if raw:
        if not raw.isdigit():
            raise UsageError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, not {raw!r}")
        return int(raw)
    return 0 if reproducible else None


def cmd_parse(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.buildfile.dump import dump
    from builder.buildfile.parse import parse_file
    print(dump(parse_file(Path(args.buildfile))), end="")
    return 0


def register(sub, common) -> None:
    b = sub.add_parser("build", parents=[common], help="build an image from a Buildfile")
    b.add_argument("-f", "--file", help="the Buildfile (default CONTEXT/Buildfile)")
    b.add_argument("-t", "--tag", action="append", default=[], help="name[:tag] for the image (repeatable)")
    b.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="a value for ARG NAME (repeatable; a bare NAME takes it from the environment)")
    b.add_argument("--target", metavar="STAGE",
                   help="build up to this stage (FROM … AS STAGE); stages it does not need are skipped")
    b.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    b.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    b.add_argument("--reproducible", action="store_true",
                   help="same inputs, same image: clamp mtimes and date history to "
                        "$SOURCE_DATE_EPOCH (0 if unset); setting SOURCE_DATE_EPOCH alone does it too")
    # a bare --explain is rewritten to --explain=text by cli.main, so it never eats CONTEXT
    b.add_argument("--explain", choices=("text", "json"),
                   help="show how each step became a layer: the overlay mount, the upper dir, "
                        "the tar entries, diffID and chain ID (json: for tools, on stdout)")
    b.add_argument("context", nargs="?", default=".", help="build context directory (default .)")
    b.add_argument("--pull", choices=("missing", "never", "always"),
                   help="pull FROM images: missing ones (default; $PYBUILD_PULL sets another), "
                        "never, or always")
    b.add_argument("--insecure", action="store_true",
                   help="talk plain http to registries (127.0.0.1 and localhost always are)")
    b.add_argument("--cache-from", action="append", default=[], metavar="REF",
                   help="use a build cache exported to a registry (repeatable)")
    b.add_argument("--cache-to", metavar="REF", help="export this build's cache to a registry")
    b.add_argument("--secret", action="append", default=[], metavar="id=ID,src=FILE|env=VAR",
                   help="a secret for RUN --mount=type=secret (repeatable); never stored or shown")
    b.add_argument("--ssh", action="append", default=[], metavar="default|ID=PATH",
                   help="an ssh agent for RUN --mount=type=ssh: $SSH_AUTH_SOCK, a socket or key files")
    b.add_argument("--snapshotter", choices=("auto", "overlay", "copy"),
                   help="how steps run and their changes are found: overlay unions, or copy (one working "
                        "root, compared after each step; same layers, slower); auto (default; "
                        "$PYBUILD_SNAPSHOTTER sets another) takes copy when overlay cannot be mounted")
    b.set_defaults(func=cmd_build)

    pa = sub.add_parser("parse", parents=[common], help="print the parsed instructions of a Buildfile")
    pa.add_argument("--dump", action="store_true", help="(default) dump the parse")
    pa.add_argument("buildfile")
    pa.set_defaults(func=cmd_parse)
