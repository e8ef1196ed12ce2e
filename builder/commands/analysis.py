"""Layer analysis: `layers`, `find`, `diff` — what every layer did, from the stored layers.

    pybuild layers webapp [--graph]         # one row per layer: +added ~modified -deleted opaque
    pybuild find webapp sources.list        # which layers hold it; which version a container sees
    pybuild diff webapp [--layer N]         # what a layer did (A/C/D, like docker diff)
    pybuild diff webapp:v1 webapp:v2        # two images' root filesystems
    pybuild diff c1                         # a kept container's writable layer
"""

from __future__ import annotations

import argparse
import json

from builder.commands import store_of
from builder.errors import PybuildError
from builder.oci.digest import short_id


def cmd_layers(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.inspect import changes
    store = store_of(args)
    image_id = store.resolve(args.image)
    if args.graph:
        print(changes.stack_graph(store, image_id))
    elif args.format == "json":
        print(json.dumps(changes.describe_layers(store, image_id), indent=2))
    elif args.format == "yaml":
        import yaml
        print(yaml.safe_dump(changes.describe_layers(store, image_id), sort_keys=False,
                             allow_unicode=True), end="")
    else:
        print(_layers_table(changes.layer_changes(store, image_id), no_trunc=args.no_trunc))
    return 0


def _layers_table(reports, *, no_trunc: bool) -> str:
    # start-up: only this command needs these
    from builder.inspect.table import human_size, render

    def short(d: str) -> str:
        return d if no_trunc else short_id(d)

    table = [("LAYER", "DIFF ID", "CHAIN ID", "SIZE", "TAR", "ADDED", "MODIFIED", "DELETED",
              "OPAQUE", "CREATED BY")]
    for r in reports:
        by = r.created_by if no_trunc or len(r.created_by) <= 45 else r.created_by[:44] + "…"
        table.append((str(r.index), short(r.diff_id), short(r.chain_id), human_size(r.content_size),
                      human_size(r.size), f"+{r.added}", f"~{r.modified}", f"-{r.deleted}",
                      str(r.opaque), by))
    return render(table)


def cmd_find(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.inspect.find import find, find_rows, hit_json
    from builder.inspect.table import render
    store = store_of(args)
    hits = find(store, store.resolve(args.image), args.pattern)
    if args.format == "json":
        print(json.dumps([hit_json(h) for h in hits], indent=2))
    else:
        print(render(find_rows(hits)))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.inspect import rootdiff
    from builder.inspect.changes import container_changes, container_image
    from builder.inspect.table import render
    store = store_of(args)
    targets = args.targets
    if len(targets) > 2:
        raise PybuildError("diff takes an image, a container, or two images")
    container_dir = store.container_dir(targets[0])
    if len(targets) == 2:
        if args.layer is not None:
            raise PybuildError("--layer applies to one image, not to a diff of two images")
        rows = rootdiff.image_diff(store, store.resolve(targets[0]), store.resolve(targets[1]))
    elif "/" not in targets[0] and store.container_meta_path(targets[0]).is_file():
        if args.layer is not None:
            raise PybuildError(f"--layer applies to images; {targets[0]} is a container")
        changes = container_changes(store, container_dir / "upper", container_image(container_dir))
        rows = rootdiff.change_rows(changes, copied_up=not args.hide_copied_up)
    else:
        rows = rootdiff.layer_diff(store, store.resolve(targets[0]), args.layer,
                                   copied_up=not args.hide_copied_up)
    if args.format == "json":
        print(json.dumps([rootdiff.row_json(r) for r in rows], indent=2))
    else:
        print(render(rootdiff.diff_table(rows)))
    return 0


def register(sub, common) -> None:
    ly = sub.add_parser("layers", parents=[common],
                        help="one row per layer: IDs, size, entries added/modified/deleted/opaque")
    ly.add_argument("image")
    ly.add_argument("--format", choices=("table", "json", "yaml"), default="table")
    ly.add_argument("--no-trunc", action="store_true", help="full IDs and commands")
    ly.add_argument("--graph", action="store_true",
                    help="draw the stack, top first, with what the container sees from each layer")
    ly.set_defaults(func=cmd_layers)

    f = sub.add_parser("find", parents=[common],
                       help="which layers hold paths matching PATTERN (-iname glob), and how")
    f.add_argument("image")
    f.add_argument("pattern", help="glob on the basename (case-insensitive); with '/', on the path")
    f.add_argument("--format", choices=("table", "json"), default="table")
    f.set_defaults(func=cmd_find)

    d = sub.add_parser("diff", parents=[common],
                       help="what a layer or container changed (A/C/D), or two images' difference")
    d.add_argument("targets", nargs="+", metavar="IMAGE|CONTAINER",
                   help="IMAGE, CONTAINER, or IMAGE1 IMAGE2")
    d.add_argument("--layer", type=int, metavar="N", help="the layer to show (0 = base; default: top)")
    d.add_argument("--hide-copied-up", action="store_true",
                   help="leave out directories that were only copied up")
    d.add_argument("--format", choices=("table", "json"), default="table")
    d.set_defaults(func=cmd_diff)
