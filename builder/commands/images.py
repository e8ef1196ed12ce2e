"""The store's images: `images`, `history`, `inspect`, `tag`, `rmi`."""

from __future__ import annotations

import argparse
import json
from datetime import UTC

from builder.commands import store_of
from builder.oci.digest import short_id


def cmd_images(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from datetime import datetime

    from builder.inspect.history import image_size
    from builder.inspect.table import human_size, render, since
    from builder.oci.config import parse_config

    store = store_of(args)
    now = datetime.now(UTC)
    table = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "LAYERS", "SIZE")]
    for ref, image_id in sorted(store.tags().items()):
        repo, _, tag = ref.rpartition(":")
        cfg = parse_config(store.image_config(image_id))
        table.append((repo, tag, short_id(image_id), since(cfg.created, now), str(len(cfg.diff_ids)),
                      human_size(image_size(store, cfg))))
    print(render(table))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    import dataclasses

    # start-up: only this command needs these
    from builder.inspect.history import format_history, history_rows
    store = store_of(args)
    rows = history_rows(store, store.resolve(args.image))
    if args.format in ("json", "yaml"):
        data = [dataclasses.asdict(r) for r in rows]
        if args.format == "json":
            print(json.dumps(data, indent=2))
        else:
            import yaml
            print(yaml.safe_dump(data, sort_keys=False), end="")
    else:
        print(format_history(rows, no_trunc=args.no_trunc, ids=args.ids))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.oci.config import parse_config
    from builder.oci.digest import chain_ids
    from builder.oci.manifest import Manifest
    store = store_of(args)
    if args.remote:                     # a registry reference: manifest, config, sizes; no pull
        # start-up: only this command needs these
        from builder.registry.inspect import inspect_remote
        print(json.dumps(inspect_remote(args.image, insecure=args.insecure, store=store), indent=2))
        return 0
    image_id = store.resolve(args.image)
    config = store.image_config(image_id)
    diff_ids = list(parse_config(config).diff_ids)
    out = {
        "Id": image_id,
        "RepoTags": sorted(t for t, i in store.tags().items() if i == image_id),
        "Config": json.loads(config),               # as stored, unmodelled keys included
        "Manifest": Manifest.parse(store.image_manifest(image_id)).to_json(),
        "DiffIDs": diff_ids,
        "ChainIDs": chain_ids(diff_ids),
    }
    print(json.dumps(out, indent=2))
    return 0


def cmd_rmi(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.store.store import normalize_tag
    store = store_of(args)
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
    store = store_of(args)
    store.set_tag(args.target, store.resolve(args.source))
    return 0


def register(sub, common) -> None:
    im = sub.add_parser("images", parents=[common], help="list tagged images")
    im.set_defaults(func=cmd_images)

    h = sub.add_parser("history", parents=[common], help="how each layer of an image was made")
    h.add_argument("image")
    h.add_argument("--no-trunc", action="store_true", help="full IDs and commands")
    h.add_argument("--ids", action="store_true", help="add each layer's diffID and chain ID")
    h.add_argument("--format", choices=("table", "json", "yaml"), default="table")
    h.set_defaults(func=cmd_history)

    ins = sub.add_parser("inspect", parents=[common], help="config, manifest, diffIDs, chain IDs (JSON)")
    ins.add_argument("image")
    ins.add_argument("--remote", action="store_true",
                     help="IMAGE is a registry reference: show it without pulling")
    ins.add_argument("--insecure", action="store_true", help="plain http to the registry")
    ins.set_defaults(func=cmd_inspect)

    r = sub.add_parser("rmi", parents=[common], help="untag and remove images")
    r.add_argument("images", nargs="+")
    r.set_defaults(func=cmd_rmi)

    t = sub.add_parser("tag", parents=[common], help="give an image another name")
    t.add_argument("source")
    t.add_argument("target")
    t.set_defaults(func=cmd_tag)
