"""Moving images in and out of the store: `import`, `load`, `save`."""

from __future__ import annotations

import argparse
from pathlib import Path

from builder.commands import store_of


def cmd_import(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.export.rootfs_import import import_rootfs
    print(import_rootfs(store_of(args), Path(args.tarball), args.reference))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.export.docker_archive import load
    for ref, image_id in load(store_of(args), Path(args.input)):
        print(f"Loaded image: {ref}" if ref else f"Loaded image ID: {image_id}")
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.build.log import BuildLog
    from builder.export.docker_archive import save
    with BuildLog().bar("saving layers") as done:
        save(store_of(args), args.images, Path(args.output), fmt=args.format, on_progress=done)
    return 0


def register(sub, common) -> None:
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
