"""Image analysis: `analyze`, `report`, `cp` — dive's numbers, why bytes are wasted, CI gates,
a page to look at, and one file out of an image; from the store, an archive or a registry.

    pybuild analyze webapp                          # score, sizes, wasted bytes, worst files, why
    pybuild analyze docker-archive:img.tar          # also oci-archive:PATH, oci:DIR, docker://REF
    pybuild analyze --json webapp > a.json          # dive's export schema (+ image.pybuild)
    pybuild analyze --ci [--ci-config .dive-ci] webapp   # PASS/FAIL per rule; exit 0 / 1
    pybuild analyze --sort size --min-size 1MB --layers 3..5 webapp
    pybuild report webapp -o webapp.html            # one self-contained page
    pybuild cp webapp:/etc/os-release . [--layer N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from builder.commands import store_of
from builder.errors import UsageError

SOURCES_HELP = "a store tag or ID, docker-archive:PATH, oci-archive:PATH, oci:DIR or docker://REF"


def _warn(text: str) -> None:
    print(f"pybuild: warning: {text}", file=sys.stderr)


def _load(args: argparse.Namespace, text: str):
    """The Analysis of the image ``text`` names (its layers streamed once)."""
    # start-up: only these commands read images this way
    from builder.analysis.image import load
    from builder.analysis.sources import open_image, parse_source
    with open_image(parse_source(text), store=lambda: store_of(args)) as image:
        return load(image)


def cmd_analyze(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.analysis import ci
    from builder.analysis.units import parse_bytes
    from builder.analysis.views import ViewOptions, parse_range, text
    if args.json and args.ci:
        raise UsageError("--json and --ci do not go together: run analyze twice")
    try:
        min_size = parse_bytes(args.min_size) if args.min_size else 0
    except ValueError as e:
        raise UsageError(f"--min-size: {e}") from None
    if args.limit < 0:
        raise UsageError("--limit: expected 0 (all) or more")
    rules = None
    if args.ci:                                   # a bad config fails before the image is read
        explicit = args.ci_config is not None
        rules = ci.load_rules(Path(args.ci_config or ".dive-ci"), explicit=explicit, warn=_warn)
    analysis = _load(args, args.image)
    if args.json:
        # start-up: only --json needs it
        from builder.analysis.dive_json import dumps, export
        print(dumps(export(analysis)))
        return 0
    if rules is not None:
        results = ci.evaluate(analysis, rules)
        print(ci.report(analysis, results), end="")
        return 0 if ci.passed(results) else 1
    span = parse_range(args.layers, len(analysis.layers)) if args.layers else None
    opts = ViewOptions(sort=args.sort, min_size=min_size, limit=args.limit, layers=span)
    print(text(analysis, opts), end="")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    # start-up: only this command needs it
    from builder.analysis.report import write_report
    out = Path(args.output)
    if not out.parent.is_dir():
        raise UsageError(f"-o {out}: its directory does not exist")
    analysis = _load(args, args.image)
    write_report(analysis, out)
    print(f"wrote {out} ({len(analysis.layers)} layers, efficiency {analysis.dive.score * 100:.2f} %)")
    return 0


def cmd_cp(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.analysis.extract import copy_out
    from builder.analysis.sources import open_image, parse_source, read_layers
    image_text, sep, path = args.source.rpartition(":/")
    if not sep or not image_text or image_text in ("docker-archive", "oci-archive", "oci", "docker"):
        raise UsageError(f"{args.source}: expected IMAGE:/PATH (an absolute path in the image)")
    with open_image(parse_source(image_text), store=lambda: store_of(args)) as image:
        count = len(image.layers)
        if args.layer is not None and not 0 <= args.layer < count:
            raise UsageError(f"--layer {args.layer}: the image has layers 0..{count - 1}")
        last = count - 1 if args.layer is None else args.layer
        below = dataclasses.replace(image, layers=image.layers[:last + 1])
        copied = copy_out(image, read_layers(below), "/" + path, Path(args.dest), warn=_warn)
    print(f"copied {copied.files} {'entry' if copied.files == 1 else 'entries'} "
          f"({copied.bytes} bytes) to {args.dest}" + (f"; skipped {copied.skipped}" if copied.skipped else ""))
    return 0


def register(sub, common) -> None:
    a = sub.add_parser("analyze", parents=[common],
                       help="dive's efficiency and wasted bytes, the worst files and why; --ci, --json")
    a.add_argument("image", help=SOURCES_HELP)
    a.add_argument("--json", action="store_true", help="dive's JSON export, with pybuild's fields under image.pybuild")
    a.add_argument("--ci", action="store_true", help="check the CI rules: PASS/FAIL per rule, exit 1 on a failure")
    a.add_argument("--ci-config", metavar="FILE", help="the CI rules (YAML, rules: map; default ./.dive-ci)")
    a.add_argument("--sort", choices=("size", "path", "layers"), default="size", help="order of the files listed")
    a.add_argument("--min-size", metavar="SIZE", help="list only files of SIZE or more (1MB, 512KiB, …)")
    a.add_argument("--layers", metavar="A..B", help="what layers A..B did together, as one diff")
    a.add_argument("--limit", type=int, default=20, metavar="N", help="list N files at most (0: all; default 20)")
    a.set_defaults(func=cmd_analyze)

    r = sub.add_parser("report", parents=[common],
                       help="one self-contained HTML page: the layer chart, the waste and why, each layer's files")
    r.add_argument("image", help=SOURCES_HELP)
    r.add_argument("-o", "--output", required=True, metavar="FILE.html")
    r.set_defaults(func=cmd_report)

    c = sub.add_parser("cp", parents=[common],
                       help="copy a file or directory out of an image (as at the top, or --layer N)")
    c.add_argument("source", metavar="IMAGE:PATH", help="the image (" + SOURCES_HELP + ") and an absolute path")
    c.add_argument("dest", metavar="DEST")
    c.add_argument("--layer", type=int, metavar="N", help="the filesystem as layers 0..N left it")
    c.set_defaults(func=cmd_cp)
