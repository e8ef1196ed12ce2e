"""The store itself: `df` (what it holds), `prune` (what nothing needs any more) and `check`
(is it whole)."""

from __future__ import annotations

import argparse

from builder.commands import store_of
from builder.inspect.table import human_size


def cmd_df(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.inspect.table import render
    from builder.store.usage import usage
    u = usage(store_of(args))
    print(render([
        ("TYPE", "TOTAL", "SIZE", "RECLAIMABLE"),
        ("Images", f"{u.images} ({u.dangling_images} dangling)", human_size(u.layer_bytes),
         human_size(u.reclaimable_bytes)),
        ("Layers", str(u.layers), human_size(u.layer_bytes), human_size(u.reclaimable_bytes)),
        ("Build cache", str(u.cache_entries), human_size(u.cache_only_bytes),
         human_size(u.cache_only_bytes) + " (with --all)"),
        ("Containers", str(u.containers), human_size(u.container_bytes), "0B"),
    ]))
    if u.cache_mounts:
        size = sum(c.size for c in u.cache_mounts)
        print(f"\nCache mounts (RUN --mount=type=cache): {len(u.cache_mounts)}, {human_size(size)}, "
              "freed by `pybuild prune --cache-mounts`")
        print(render([("ID", "SIZE", "INSTANCES", "IN USE")] +
                     [(c.id, human_size(c.size), str(c.instances), "yes" if c.in_use else "no")
                      for c in u.cache_mounts]))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.store.usage import prune
    removed = prune(store_of(args), all_cache=args.all, cache_mounts=args.cache_mounts)
    print(f"Deleted {removed['images']} dangling images, {removed['cache_entries']} cache entries, "
          f"{removed['layers']} layers, {removed['blobs']} blobs")
    if args.cache_mounts:
        print(f"Deleted {removed['cache_mounts']} cache mounts")
    print(f"Total reclaimed space: {human_size(removed['bytes'])}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """One line per problem and exit 1, or ``store OK``; ``--repair`` removes what is broken
    and unreferenced and still exits 1 if something it could not remove is left."""
    # start-up: only this command needs these
    from builder.store.check import check_store
    problems = check_store(store_of(args), repair=args.repair, fast=args.fast)
    for p in problems:
        print(p)
    left = [p for p in problems if not p.repaired]
    if left:
        if args.repair:
            print(f"{len(left)} problem(s) could not be repaired (something still needs them)")
        return 1
    print("store OK" if not problems else f"store OK after repair ({len(problems)} removed)")
    return 0


def register(sub, common) -> None:
    d = sub.add_parser("df", parents=[common], help="what the store holds, and what prune would free")
    d.set_defaults(func=cmd_df)

    p = sub.add_parser("prune", parents=[common],
                       help="remove dangling images, stale cache entries and unreferenced layers")
    p.add_argument("--all", action="store_true", help="drop the whole build cache too")
    p.add_argument("--cache-mounts", action="store_true",
                   help="remove the RUN --mount=type=cache directories no build is using")
    p.set_defaults(func=cmd_prune)

    c = sub.add_parser("check", parents=[common],
                       help="verify every blob, layer dir, link, image and tag of the store")
    c.add_argument("--repair", action="store_true",
                   help="remove what is broken and that nothing needs (stale staging, dangling links, ...)")
    c.add_argument("--fast", action="store_true",
                   help="skip re-hashing blobs whose size/mtime/inode are as when stored")
    c.set_defaults(func=cmd_check)
