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
from builder.context.copy import CopyOptions, Item, copy_items
from builder.context.dockerignore import PatternMatcher
from builder.context.sources import BuildContext, Source, apply_exclude
from builder.errors import ContextError
from builder.layer import overlay
from builder.layer.overlay import OverlayMount


def resolve_sources(root: Path, srcs: list[str], exclude: PatternMatcher | None) -> list[Source]:
    """Every source ``srcs`` name inside ``root`` (an image's mounted union), minus --exclude."""
    context = BuildContext(root, in_scope=True)
    found: list[Source] = []
    for src in srcs:
        found.extend(apply_exclude(context.resolve(src), exclude))
    if not found:
        raise ContextError("no source files were specified (all excluded)")
    return found


def source_checksum(root: Path, srcs: list[str], exclude: PatternMatcher | None) -> tuple[str, int]:
    """In a helper with the image mounted on ``root``: (created_by checksum, source count)."""
    items = [Item(source=s) for s in resolve_sources(root, srcs, exclude)]
    return checksum(items), len(items)


def copy_from_image(merged: Path, image: OverlayMount, srcs: list[str], dest: str,
                    options: CopyOptions, exclude: PatternMatcher | None) -> None:
    """In the step's helper: mount ``image`` read-only, copy ``srcs`` into ``merged``, unmount."""
    overlay.mount_overlay(image)
    try:
        items = [Item(source=s) for s in resolve_sources(Path(image.target), srcs, exclude)]
        copy_items(merged, items, dest, options)
    finally:
        overlay.umount(image.target)
