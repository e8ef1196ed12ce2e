"""Layers as directories: `export-layers`, `import-layers`, `mount`, `umount`.

    pybuild export-layers webapp /tmp/w      # /tmp/w/diff/<id>/…, layers/, branches, layers.yaml
    find /tmp/w/diff -iname sources.list     # which layers hold the file
    rm /tmp/w/diff/<id>/etc/.wh.passwd       # undo a deletion …
    pybuild import-layers /tmp/w webapp:back # … and store the edited stack as an image
    pybuild mount webapp:back /mnt/x         # its union, read-only, until `pybuild umount /mnt/x`
"""

from __future__ import annotations

import argparse
from pathlib import Path

from builder.commands import store_of


def cmd_export_layers(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.export.aufs import export_layers
    store = store_of(args)
    image_id = store.resolve(args.image)
    layers = export_layers(store, image_id, Path(args.dir))
    print(f"exported {len(layers)} layers of {image_id} to {Path(args.dir).absolute()}")
    return 0


def cmd_import_layers(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.export.aufs import import_layers
    store = store_of(args)
    image_id = import_layers(store, Path(args.dir))
    store.set_tag(args.name, image_id)
    print(image_id)
    return 0


def cmd_mount(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.runtime.mount import mount_image
    store = store_of(args)
    opts = mount_image(store, store.resolve(args.image), Path(args.dir))
    print(f"overlay on {Path(args.dir).absolute()} (ro,{opts}) from {store.root}")
    return 0


def cmd_umount(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.runtime.mount import umount_image
    umount_image(Path(args.dir))
    return 0


def register(sub, common) -> None:
    e = sub.add_parser("export-layers", parents=[common],
                       help="write an image's layers as an AUFS-style tree (diff/, layers/, branches)")
    e.add_argument("image")
    e.add_argument("dir", help="a directory that does not exist yet or is empty")
    e.set_defaults(func=cmd_export_layers)

    i = sub.add_parser("import-layers", parents=[common],
                       help="store an (edited) export-layers tree as a new image")
    i.add_argument("dir")
    i.add_argument("name", help="name[:tag] for the new image")
    i.set_defaults(func=cmd_import_layers)

    m = sub.add_parser("mount", parents=[common],
                       help="mount an image's union read-only on DIR (stays until `umount`)")
    m.add_argument("image")
    m.add_argument("dir")
    m.set_defaults(func=cmd_mount)

    u = sub.add_parser("umount", parents=[common], help="unmount a `pybuild mount`")
    u.add_argument("dir")
    u.set_defaults(func=cmd_umount)
