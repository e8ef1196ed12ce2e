"""``pybuild find IMAGE PATTERN``: which layers hold a path, what each did with it, and which
version a container sees: the article's ``find /var/lib/docker/aufs -name sources.list``,
answered from the stored layer dirs.

A hit is one entry of one layer whose path matches.  ``how`` is what the layer did:

    added      the path was not in the union of the layers below
    modified   it was (a copy-up: a new version of something below)
    deleted    the entry is a whiteout

and then, from above: ``visible`` on the one hit whose version the container sees (none when
the decision on top is a deletion), ``hidden`` on every hit that a layer above overrides
(a later version, a whiteout, an opaque directory, or an ancestor that became a non-directory),
with ``hidden_by`` naming that layer.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass

from builder.inspect.changes import LayerIndex, filetype_of, image_layers, under_opaque, union_lookup
from builder.layer import whiteout
from builder.store.store import Store


@dataclass(frozen=True)
class FindHit:
    layer: int                 # 0 = base
    chain_id: str
    path: str                  # absolute, as in the container
    how: str                   # "added", "modified" or "deleted"
    visible: bool              # the container sees this layer's version
    hidden: bool               # a layer above overrides this entry
    hidden_by: int | None      # that layer (None unless hidden)
    opaque: bool               # an opaque directory (hides what lower layers have below it)
    filetype: str              # f d l c b p s; "w" for a whiteout
    mode: int                  # permission bits (0 for a whiteout)
    size: int                  # file bytes or link target length

    @property
    def state(self) -> str:
        """``visible``, ``hidden by layer N``, or for a deciding whiteout ``in effect``."""
        if self.visible:
            return "visible"
        if self.hidden:
            return f"hidden by layer {self.hidden_by}"
        return "in effect"


def matches(pattern: str, path: str) -> bool:
    """``find -iname``: a case-insensitive glob on the basename; a pattern with ``/`` is
    matched against the whole path (absolute if the pattern starts with ``/``)."""
    pat = pattern.casefold()
    if "/" in pattern:
        subject = path if pattern.startswith("/") else path.lstrip("/")
    else:
        subject = path.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(subject.casefold(), pat)


def find(store: Store, image_id: str, pattern: str) -> list[FindHit]:
    """Every layer entry of ``image_id`` matching ``pattern``, sorted by path then layer
    (base first).  Raises ImageNotFound/StoreError as the store does."""
    _, chains, indexes = image_layers(store, image_id)
    top_first = indexes[::-1]
    n = len(indexes)
    hits: list[FindHit] = []
    for i, layer in enumerate(indexes):
        for rel, st in layer.entries.items():
            path = "/" + rel
            if not matches(pattern, path):
                continue
            hits.append(_hit(i, chains[i], layer, rel, st, top_first, n))
    hits.sort(key=lambda h: (os.fsencode(h.path), h.layer))
    return hits


def _hit(i: int, chain: str, layer: LayerIndex, rel: str, st: os.stat_result,
         top_first: list[LayerIndex], n: int) -> FindHit:
    below = top_first[n - i:]                      # the layers under layer i, topmost first
    decided = union_lookup(top_first, rel)
    # layer i has an entry at rel, so some layer at or above it decides the path
    decider = n - 1 - decided[0] if decided is not None else i
    is_wh = whiteout.is_overlay_whiteout(st)
    if is_wh:
        how = "deleted"
    else:
        lower = None if under_opaque(layer, rel) else union_lookup(below, rel)
        how = "modified" if lower is not None and lower[1] is not None else "added"
    hidden = decider > i
    visible = not hidden and not is_wh
    return FindHit(
        layer=i, chain_id=chain, path="/" + rel, how=how, visible=visible, hidden=hidden,
        hidden_by=decider if hidden else None, opaque=rel in layer.opaque,
        filetype="w" if is_wh else filetype_of(st.st_mode),
        mode=0 if is_wh else stat.S_IMODE(st.st_mode),
        size=st.st_size if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) else 0)


def find_rows(hits: list[FindHit]) -> list[tuple[str, ...]]:
    """The table of ``pybuild find``: LAYER, HOW, TYPE, STATE, PATH."""
    table: list[tuple[str, ...]] = [("LAYER", "HOW", "TYPE", "STATE", "PATH")]
    for h in hits:
        how = h.how + (", opaque" if h.opaque else "")
        table.append((str(h.layer), how, h.filetype, h.state, h.path))
    return table


def hit_json(h: FindHit) -> dict:
    return {"layer": h.layer, "chain_id": h.chain_id, "path": h.path, "how": h.how,
            "visible": h.visible, "hidden": h.hidden, "hidden_by": h.hidden_by, "opaque": h.opaque,
            "type": h.filetype, "mode": f"{h.mode:04o}", "size": h.size}
