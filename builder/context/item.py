"""What one ADD/COPY copies, and how its entries are owned and moded: the values the build
hands the copying code (context/copy.py), kept apart so that a cached build need not import it."""

from __future__ import annotations

from dataclasses import dataclass

from builder.context.chmod import Chmod
from builder.context.sources import Source


@dataclass(frozen=True)
class Item:
    """One thing to copy.  ``mode``/``mtime`` override the source's (downloads); ``subdir``
    (COPY --parents) is where below the destination it goes: a file into ``dest/subdir/``,
    a directory's contents into ``dest/subdir``."""

    source: Source
    extract: bool = False
    mode: int | None = None
    mtime: int | None = None
    subdir: str = ""


@dataclass(frozen=True)
class CopyOptions:
    """How the copied entries are owned and moded.  ``chown`` is the expanded ``--chown``
    value (resolved inside the helper, against the destination rootfs); None means 0:0, or
    the source's own ids when ``preserve_owner`` (``COPY --from``).  ``chmod`` None keeps the
    source's permission bits."""

    chown: str | None = None
    chmod: Chmod | None = None
    preserve_owner: bool = False
