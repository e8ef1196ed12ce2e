"""``COPY --from=<stage|index|image>``: sources from another image's root filesystem.

The source image's layers are mounted as a read-only overlay inside the helper child (which
has its own mount namespace, so nothing outlives it; the mount is removed when the copy
ends anyway).  Source paths are resolved in THAT root: symlinks are clamped to it, as
docker's FollowSymlinkInScope does.  Ownership is preserved (classic ``preserveOwnership``)
unless ``--chown`` is given.
"""

from __future__ import annotations

from pathlib import Path

from builder.context.checksum import checksum
from builder.context.copy import copy_items
from builder.context.dockerignore import PatternMatcher
from builder.context.item import CopyOptions, Item
from builder.context.sources import BuildContext, apply_exclude, parents_pattern, parents_subdir
from builder.errors import ContextError
from builder.layer import overlay
from builder.layer.overlay import OverlayMount


def resolve_items(root: Path, srcs: list[str], exclude: PatternMatcher | None, *, parents: bool = False) -> list[Item]:
    """What ``srcs`` name inside ``root`` (an image's mounted union), minus --exclude; with
    ``parents`` (COPY --parents) each keeps its path below the destination and a missing
    source is skipped, as BuildKit does."""
    context = BuildContext(root, in_scope=True)
    found: list[Item] = []
    for src in srcs:
        if not parents:
            found.extend(Item(source=s) for s in apply_exclude(context.resolve(src), exclude))
            continue
        pattern, base = parents_pattern(src)
        try:
            matches = context.resolve(pattern)
        except ContextError:
            continue
        found.extend(Item(source=s, subdir=parents_subdir(s, base)) for s in apply_exclude(matches, exclude))
    if not found and not parents:
        raise ContextError("no source files were specified (all excluded)")
    return found


def source_checksum(root: Path, srcs: list[str], exclude: PatternMatcher | None,
                    parents: bool = False) -> tuple[str, int]:
    """In a helper with the image mounted on ``root``: (created_by checksum, source count)."""
    items = resolve_items(root, srcs, exclude, parents=parents)
    return checksum(items), len(items)


def copy_from_image(merged: Path, image: OverlayMount, srcs: list[str], dest: str,
                    options: CopyOptions, exclude: PatternMatcher | None, parents: bool = False) -> None:
    """In the step's helper: mount ``image`` read-only, copy ``srcs`` into ``merged``, unmount."""
    overlay.mount_overlay(image)
    try:
        copy_items(merged, resolve_items(Path(image.target), srcs, exclude, parents=parents), dest, options)
    finally:
        overlay.umount(image.target)
