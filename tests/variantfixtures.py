"""One Buildfile built several ways — as root over overlay (the reference), with the copy
snapshotter, as an ordinary user — and what each way made, to compare.

Every build here is reproducible (SOURCE_DATE_EPOCH) and ``--no-cache``, so two ways of making
the same layers give the same diffIDs, and a variant never takes the reference's layers from
the cache.  ``Made`` keeps what is compared: success and the error's last line, the diffIDs,
the history's created_by strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from buildfixtures import build, writable_copy
from conftest import conformance_dir
from rootlessfixtures import RootlessUser

EPOCH = "1700000000"


@dataclass(frozen=True)
class Made:
    ok: bool
    error: str                        # the last line pybuild printed on stderr when it failed
                                      # (the Buildfile's path in it spelled "Buildfile")
    diff_ids: tuple[str, ...] = ()
    created_by: tuple[str, ...] = ()


def case_context(case: str, dst: Path) -> tuple[Path, Path]:
    """(a writable copy of a conformance case's context at ``dst``, its Buildfile)."""
    src = conformance_dir() / case
    return writable_copy(src / "ctx" if (src / "ctx").is_dir() else src, dst), src / "Buildfile"


def build_as_root(store: Path, ctx: Path, buildfile: Path, tag: str, snapshotter: str) -> Made:
    built = build(store, ctx, "--no-cache", "--snapshotter", snapshotter, buildfile=buildfile, tag=tag,
                  check=False, validate=True, env={"SOURCE_DATE_EPOCH": EPOCH})
    if not built.ok:
        return Made(False, _last_line(built.proc.stderr).replace(str(buildfile), "Buildfile"))
    cfg = built.config()
    return Made(True, "", tuple(cfg["rootfs"]["diff_ids"]), tuple(h.get("created_by", "") for h in cfg["history"]))


def build_as_user(user: RootlessUser, ctx: Path, buildfile: Path, tag: str, snapshotter: str) -> Made:
    """Build in the user's default store; ``ctx`` and ``buildfile`` must be the user's to read."""
    proc = user.pybuild("build", "--no-cache", "--snapshotter", snapshotter, "-f", str(buildfile), "-t", tag,
                        str(ctx), env={"SOURCE_DATE_EPOCH": EPOCH}, check=False)
    if proc.returncode != 0:
        return Made(False, _last_line(proc.stderr).replace(str(buildfile), "Buildfile"))
    info = json.loads(user.pybuild("inspect", tag).stdout)
    return Made(True, "", tuple(info["DiffIDs"]),
                tuple(h.get("created_by", "") for h in info["Config"]["history"]))


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


class Reference:
    """Root over overlay, each case built once per session (on first use)."""

    def __init__(self, store: Path, work: Path) -> None:
        self.store = store
        self.work = work
        self._made: dict[str, Made] = {}

    def conformance(self, case: str) -> Made:
        if case not in self._made:
            ctx, buildfile = case_context(case, self.work / case)
            self._made[case] = build_as_root(self.store, ctx, buildfile, f"ref/{case}", "overlay")
        return self._made[case]
