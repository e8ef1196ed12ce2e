"""Containers: `run`, `commit`, `ps`, `rm` — the article's experiments, live.

    pybuild run --keep c1 webapp sh -c 'echo x >> /etc/motd; rm /etc/issue; touch /new'
    pybuild diff c1                 # C etc/motd, D etc/issue, A new
    pybuild commit c1 webapp:v2     # the writable layer becomes a layer of a new image
"""

from __future__ import annotations

import argparse

from builder.commands import store_of
from builder.oci.digest import short_id


def cmd_run(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.runtime import container
    store = store_of(args)
    c = container.create(store, args.image, args.command, name=args.keep)
    try:
        return container.run(store, c)
    finally:
        if args.keep is None:
            import shutil
            shutil.rmtree(c.path, ignore_errors=True)


def cmd_commit(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.runtime import container
    store = store_of(args)
    print(container.commit(store, container.get(store, args.container), args.image, message=args.message))
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.inspect.table import render
    from builder.runtime import container
    store = store_of(args)
    table = [("NAME", "IMAGE", "COMMAND", "CREATED")]
    for name in container.names(store):
        c = container.get(store, name)
        table.append((name, short_id(c.image_id), " ".join(c.command)[:40], c.created[:19]))
    print(render(table))
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.runtime import container
    store = store_of(args)
    for name in args.containers:
        container.remove(store, name)
        print(name)
    return 0


def register(sub, common) -> None:
    r = sub.add_parser("run", parents=[common],
                       help="run a command in an image (its layers plus a writable layer)")
    r.add_argument("--keep", metavar="NAME", help="keep the writable layer as container NAME")
    r.add_argument("image")
    r.add_argument("command", nargs=argparse.REMAINDER, help="default: the image's ENTRYPOINT/CMD")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("commit", parents=[common], help="a kept container's changes become a new image")
    c.add_argument("-m", "--message", default="", help="history comment")
    c.add_argument("container")
    c.add_argument("image", nargs="?", help="name[:tag] for the new image")
    c.set_defaults(func=cmd_commit)

    p = sub.add_parser("ps", parents=[common], help="list kept containers")
    p.set_defaults(func=cmd_ps)

    rm = sub.add_parser("rm", parents=[common], help="remove kept containers")
    rm.add_argument("containers", nargs="+")
    rm.set_defaults(func=cmd_rm)
