"""``pybuild build --explain``: how each step became (or did not become) a layer.

For every step: the exact overlay mount (lowers in order, upper, options), what the upper dir
held afterwards as the kernel wrote it (whiteouts as 0:0 char devices, opaque dirs by xattr),
how each of those became a tar entry, the diffID and how the chain ID follows from the
previous one.  ``StepExplanation`` values are built during the build; rendering is pure.
"""

from __future__ import annotations

import json
import os
import stat
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder.build.steps import RunStep
from builder.layer import whiteout

EMPTY_NOTE = "empty tar: 1024 zero bytes"


@dataclass(frozen=True)
class UpperEntry:
    """One path in the upper dir, as the kernel left it."""

    path: str
    what: str            # e.g. "file 3 bytes", "dir (copied up)", "char 0:0 = whiteout"
    tar: tuple[str, ...]  # the tar entry names it became


@dataclass(frozen=True)
class LowerDir:
    path: str            # as given to the kernel (relative to the store root)
    role: str            # "init layer", "layer 2 (sha256:…)", "empty"


@dataclass(frozen=True)
class StepExplanation:
    number: int
    total: int
    instruction: str
    kind: str                                  # "layer", "empty layer", "config"
    config_change: str = ""                    # for config-only steps
    lowers: tuple[LowerDir, ...] = ()
    upper: str = ""
    options: str = ""
    entries: tuple[UpperEntry, ...] = ()
    diff_id: str = ""
    tar_size: int = 0
    parent_chain: str | None = None
    chain_id: str = ""
    created_by: str = ""
    notes: tuple[str, ...] = field(default=())
    cache: str = ""                            # "hit (…)" or "miss: why"


def upper_entries(upper: Path, lower_has) -> list[UpperEntry]:
    """Walk an upper dir (sorted, parents first) and describe each entry and its tar form.
    ``lower_has(rel)`` tells whether a path exists in the layers below (for "copied up")."""
    found: list[tuple[str, str, os.stat_result]] = []
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, upper)
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            found.append((name if rel_dir == "." else f"{rel_dir}/{name}", full, os.lstat(full)))
    here = Counter((st.st_dev, st.st_ino) for _, _, st in found if st.st_nlink > 1)
    out = [_describe(rel, full, st, lower_has, here[(st.st_dev, st.st_ino)]) for rel, full, st in found]
    out.sort(key=lambda e: e.path.encode("utf-8", "surrogateescape"))
    return out


def _describe(rel: str, full: str, st: os.stat_result, lower_has, links_here: int = 1) -> UpperEntry:
    """One upper dir entry; ``links_here`` is how many names its inode has in this upper dir."""
    parent, _, name = rel.rpartition("/")
    prefix = f"{parent}/" if parent else ""
    mode = f"{stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid}"
    if whiteout.is_overlay_whiteout(st):
        return UpperEntry(rel, "char device 0:0 = whiteout: deleted from a lower layer",
                          (prefix + whiteout.whiteout_name(name),))
    if stat.S_ISDIR(st.st_mode):
        if whiteout.is_opaque(full):
            return UpperEntry(rel, f"dir {mode}, xattr trusted.overlay.opaque=y = opaque: "
                                   "hides everything below it in lower layers",
                              (rel + "/", f"{rel}/{whiteout.OPAQUE_MARKER}"))
        how = "copied up (exists below)" if lower_has(rel) else "new"
        return UpperEntry(rel, f"dir {mode}, {how}", (rel + "/",))
    how = "copied up and changed" if lower_has(rel) else "new"
    if stat.S_ISLNK(st.st_mode):
        return UpperEntry(rel, f"symlink -> {os.readlink(full)}, {how}", (rel,))
    if stat.S_ISREG(st.st_mode):
        links = f", {links_here} links" if links_here > 1 else ""
        shared = "; unchanged since the step last ran: hardlinked from its previous layer, not copied" \
            if st.st_nlink > max(links_here, 1) else ""
        return UpperEntry(rel, f"file {mode} {st.st_size} bytes{links}, {how}{shared}", (rel,))
    kind = "fifo" if stat.S_ISFIFO(st.st_mode) else "device" if stat.S_ISCHR(st.st_mode) or \
        stat.S_ISBLK(st.st_mode) else "special"
    return UpperEntry(rel, f"{kind} {mode}, {how}", (rel,))


def render_text(e: StepExplanation) -> str:
    lines = [f"  explain step {e.number}/{e.total}: {e.instruction}"]
    if e.cache:
        lines.append(f"    cache: {e.cache}")
    if e.kind == "config":
        lines.append(f"    config only: {e.config_change}; history gets an empty_layer entry")
        lines.append(f"    created_by: {e.created_by}")
        return "\n".join(lines)
    lines.append("    overlay mount (lower dirs topmost first):")
    for i, lower in enumerate(e.lowers, start=1):
        lines.append(f"      lower {i}: {lower.path}  ({lower.role})")
    lines.append(f"      upper:   {e.upper}")
    lines.append(f"      options: {e.options}")
    if not e.entries:
        lines.append("    upper dir afterwards: empty")
    else:
        lines.append("    upper dir afterwards (as the kernel wrote it) -> tar entries:")
        for entry in e.entries:
            lines.append(f"      {entry.path}: {entry.what}")
            lines.append(f"        -> {', '.join(entry.tar)}")
    for note in e.notes:
        lines.append(f"    {note}")
    lines.append(f"    diffID = sha256(tar of {e.tar_size} bytes) = {e.diff_id}")
    if e.kind == "empty layer":
        lines.append("    = the empty layer: docker's classic builder records empty_layer: true "
                     "and adds no layer")
    elif e.parent_chain is None:
        lines.append(f"    chain ID = diffID (first layer) = {e.chain_id}")
    else:
        lines.append(f'    chain ID = sha256("{e.parent_chain} {e.diff_id}")')
        lines.append(f"             = {e.chain_id}")
    lines.append(f"    created_by: {e.created_by}")
    return "\n".join(lines)


def to_json(steps: list[StepExplanation]) -> list[dict]:
    return [asdict(s) for s in steps]


def config_change(old, new) -> str:
    """What a config-only step changed, field by field (``Cmd = ["a"]``)."""
    before, after = old.to_json(), new.to_json()
    changed = [f"{k} = {json.dumps(after.get(k))}" for k in sorted(set(before) | set(after))
               if before.get(k) != after.get(k)]
    return "; ".join(changed) or "nothing"


_MOUNT_NOTES = {
    "bind": "bound read-only from {src}; nothing below it is captured",
    "cache": "a store dir kept across builds (id {id}, sharing={sharing}); its content is never in a layer "
             "or in the step's cache key",
    "tmpfs": "a tmpfs that vanishes after the step",
    "secret": "secret {id}: a read-only file in a tmpfs private to the step; its value is never stored",
    "ssh": "ssh agent {id}: a socket forwarded for the step only",
}


def run_notes(step: RunStep) -> tuple[str, ...]:
    """What --explain says of a RUN's mounts and network (never a secret's value)."""
    notes = []
    for m in step.mounts:
        src = (f"stage/image {m.from_}:" if m.from_ else "the context:") + (m.source or "/")
        text = _MOUNT_NOTES[m.type].format(src=src, id=m.id, sharing=m.sharing)
        if m.type == "bind" and not m.readonly:
            text = text.replace("read-only", "writable (writes thrown away)")
        if m.type == "secret" and m.env:
            text = f"secret {m.id}: the variable {m.env} of this RUN only; its value is never stored"
        notes.append(f"mount {m.type} on {m.target or '(env)'}: {text}")
    if step.network == "none":
        notes.append("network none: a network namespace of its own, loopback only")
    return tuple(notes)


def cache_summary(hits: int, steps: int) -> str:
    """The line under a --explain build: how many steps the cache serves."""
    ratio = f"{100 * hits / steps:.0f}%" if steps else "n/a"
    return f"cache: {hits} of {steps} steps from the cache ({ratio})"
