"""Why a step missed the cache: what changed since the last build of the same image.

Every build records, per step, what its cache key was made of: the image before it (the
parent), the instruction, the ARG values in scope, the description (build/steps.py), and for
steps that read files (ADD/COPY, RUN --mount=type=bind) a short digest per file.  The last
few builds are kept in the store under the first tag (or the Buildfile's path when nothing is
tagged).  The next build compares each step that misses with the same step of the most recent
of those builds that had the same parent (the closest cached parent), else of the last build,
and says the first thing that differs, in the order that explains the most: an
earlier step ran again (so the parent changed), the instruction was edited, a build-arg
changed, context files changed (a few named), a downloaded URL changed, else the key is the
same and the entry is gone (pruned, or ``--no-cache``).  BuildKit users have asked for this
for years (moby/buildkit#2567).  Pure but for ``load``/``save``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MAX_NAMED = 3          # files named in a reason; the rest are counted
KEEP = 8               # builds remembered per image


@dataclass(frozen=True)
class StepRecord:
    """What one step's cache key was made of."""

    number: int
    instruction: str
    parent: str                                   # image ID before the step
    description: str                              # canonical JSON of the step
    args: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)   # path → digest of what the key took
    inputs: str = ""                              # the rest of the key's inputs (image IDs, URLs)
    files_ref: str = ""                           # digest of ``files`` (how a record on disk names them)

    def saved(self) -> dict[str, object]:
        """The record as stored: its file map by reference (``files_ref``), not inline."""
        out = {k: v for k, v in self.__dict__.items() if k != "files"}
        out["files_ref"] = files_ref(self.files)
        return out


Builds = list[dict[int, StepRecord]]


def files_ref(files: dict[str, str]) -> str:
    """A file map's name on disk: the digest of its canonical JSON ("" for none)."""
    if not files:
        return ""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def load(path: Path) -> Builds:
    """The recorded builds at ``path``, newest first, each its steps by number (file maps are
    read only when a reason needs them: ``load_files``)."""
    try:
        return [{s["number"]: StepRecord(**s) for s in build} for build in json.loads(path.read_text())["builds"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def save(path: Path, records: list[StepRecord], earlier: Builds, write: Callable[[Path, bytes], None]) -> None:
    """This build's records first, then the ``KEEP - 1`` newest earlier ones; each file map
    once, beside them under ``files/`` (a map that did not change is not written again)."""
    for record in records:
        ref = files_ref(record.files)
        target = path.parent / "files" / f"{ref}.json"
        if ref and not target.exists():
            target.parent.mkdir(exist_ok=True)
            write(target, json.dumps(record.files, sort_keys=True).encode("utf-8", "surrogateescape"))
    builds = [[r.saved() for r in records]] + [[r.__dict__ for r in b.values()] for b in earlier[:KEEP - 1]]
    write(path, json.dumps({"builds": builds}, sort_keys=True).encode())


def load_files(path: Path, record: StepRecord) -> dict[str, str]:
    """The file map of a loaded ``record`` (records of this build carry theirs)."""
    if record.files or not record.files_ref:
        return record.files
    try:
        files = json.loads((path.parent / "files" / f"{record.files_ref}.json").read_text())
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError):
        return {}


def closest(now: StepRecord, builds: Builds) -> StepRecord | None:
    """The same step of the newest build that had the same parent, else of the newest build."""
    same = [b[now.number] for b in builds if now.number in b]
    return next((r for r in same if r.parent == now.parent), same[0] if same else None)


def reason(now: StepRecord, before: StepRecord | None, *, no_cache: bool, rerun: int | None,
           files_of: Callable[[StepRecord], dict[str, str]] = lambda r: r.files) -> str:
    """Why ``now`` missed: compared with ``before`` (see ``closest``).  ``rerun`` is the first
    step of this build that ran (its result is every later parent); ``files_of`` reads a
    record's file map."""
    if no_cache:
        return "--no-cache: every step runs"
    if before is None:
        return "no earlier build of this image recorded this step"
    if before.parent != now.parent:
        if rerun is not None and rerun < now.number:
            return f"the image before it changed: step {rerun} ran again"
        return ("the image before it is not the one the last build had (the steps before it came "
                "from an older cache entry, or the base image changed)")
    if before.instruction != now.instruction:
        return f"the instruction changed (it was: {before.instruction})"
    changed_args = sorted(k for k in set(before.args) | set(now.args) if before.args.get(k) != now.args.get(k))
    if changed_args:
        shown = ", ".join(f"{k}: {before.args.get(k, '(unset)')} → {now.args.get(k, '(unset)')}"
                          for k in changed_args)
        return f"build-arg changed: {shown}"
    if (before.files_ref or files_ref(before.files)) != files_ref(now.files):
        return "context files " + _files(files_of(before), now.files)
    if before.description != now.description:
        return "what the step does changed: " + _first_difference(before.description, now.description)
    if before.inputs != now.inputs:
        return "its inputs changed: " + _short(before.inputs) + " → " + _short(now.inputs)
    return "the same step as last time, but its cache entry is gone (pruned, or its layers were removed)"


def _files(before: dict[str, str], now: dict[str, str]) -> str:
    changed = sorted(p for p in set(before) & set(now) if before[p] != now[p])
    added = sorted(set(now) - set(before))
    removed = sorted(set(before) - set(now))
    parts = []
    for what, paths in (("changed", changed), ("added", added), ("removed", removed)):
        if paths:
            named = ", ".join(paths[:MAX_NAMED])
            more = f" and {len(paths) - MAX_NAMED} more" if len(paths) > MAX_NAMED else ""
            parts.append(f"{what}: {named}{more}")
    return "; ".join(parts)


def _first_difference(before: str, now: str) -> str:
    try:
        old, new = json.loads(before), json.loads(now)
    except ValueError:
        return "its description"
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"{key}: {_short(json.dumps(old.get(key)))} → {_short(json.dumps(new.get(key)))}"
    return "its description"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
