"""The root a step's helper mounts: an overlay union, or a plain directory bound in place.

A build step runs over one of two roots, as its snapshotter decides (build/snapshotter.py):
the overlay union of the image's layers with a fresh upper dir (``OverlayMount``), or, with
the copy snapshotter, the build's working root, a plain directory holding the whole image,
bind-mounted on the step's target (``BindRoot``).  Both are mounted inside the helper's
private mount namespace and vanish with it; the sandbox treats them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.layer import overlay
from builder.layer.overlay import MS_BIND, OverlayMount


@dataclass(frozen=True, kw_only=True)
class BindRoot:
    """``source`` (a directory holding the whole root filesystem) bound on ``target``.

    Shaped like an OverlayMount where ``--explain`` reads one: no lowers, no upper dir."""

    source: str
    target: str
    lowers: tuple[str, ...] = ()
    upper: str | None = None

    @property
    def options(self) -> str:
        return f"bind {self.source} (copy snapshotter: the build's working root)"


#: What a step's helper mounts as the root it works in.
RootMount = OverlayMount | BindRoot


def mount_root(m: RootMount) -> None:
    """Mount ``m`` on its target in the current mount namespace (overlay: also changes the
    cwd to the store root, see ``overlay.mount_overlay``)."""
    if isinstance(m, OverlayMount):
        overlay.mount_overlay(m)
    else:
        overlay.mount(m.source, m.target, None, MS_BIND)
