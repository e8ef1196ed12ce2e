"""One analysed image: its layers (as dive lists them) with their entries and changes, dive's
numbers, and the wasted paths with their reasons.  ``analyze`` is pure over the entries;
``load`` reads them from a source."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from builder.analysis.efficiency import Efficiency, efficiency
from builder.analysis.entries import Entry
from builder.analysis.sources import Image, read_layers
from builder.analysis.union import Change, Union, replay
from builder.analysis.waste import WastedPath, duplicate_bytes, reclaimable_bytes, wasted_paths
from builder.oci.config import History, ImageConfig

#: dive strips this from created_by to make a layer's command.
SHELL_PREFIX = "/bin/sh -c "


@dataclass(frozen=True)
class LayerInfo:
    """A layer as dive exports it (index, id, digestId, sizeBytes, command) plus its entries,
    its changes, and the full created_by of its history entry."""

    index: int
    id: str
    digest_id: str
    size: int
    command: str
    created_by: str
    entries: Sequence[Entry]
    changes: Sequence[Change]


@dataclass(frozen=True)
class Analysis:
    name: str                       # the source as given
    layers: tuple[LayerInfo, ...]
    dive: Efficiency
    wasted: tuple[WastedPath, ...]
    final: Union

    @property
    def reclaimable_bytes(self) -> int:
        return reclaimable_bytes(self.wasted)

    @property
    def duplicate_bytes(self) -> int:
        return duplicate_bytes(self.wasted)


def analyze(name: str, config: ImageConfig, layer_ids: Sequence[str],
            layers: Sequence[Sequence[Entry]]) -> Analysis:
    """dive's numbers and ours for an image of ``layers`` (entries, base first)."""
    eff = efficiency(layers)
    final, changes = replay(layers)
    history = dive_history(config, len(layers))
    infos = tuple(LayerInfo(i, layer_ids[i], h_id, eff.layer_sizes[i], _command(h.created_by), h.created_by,
                            layers[i], changes[i])
                  for i, (h, h_id) in enumerate(history))
    return Analysis(name, infos, eff, tuple(wasted_paths(changes, final.visible)), final)


def load(image: Image, *, on_layer: Callable[[int], None] | None = None) -> Analysis:
    layers = read_layers(image, on_layer=on_layer)
    return analyze(str(image.source), image.config, [lr.id for lr in image.layers], layers)


def dive_history(config: ImageConfig, count: int) -> list[tuple[History, str]]:
    """(history entry, its ID) for each of ``count`` layers, as dive pairs them: the next
    history entry that is not empty_layer, else ``(missing)`` with no ID; an entry's ID is the
    diff_id of its rank among the non-empty entries."""
    ids: list[str] = []
    for h in config.history:
        if not h.empty_layer:
            ids.append(config.diff_ids[len(ids)] if len(ids) < len(config.diff_ids) else "")
    entries = [(h, ids[k]) for k, h in enumerate(h for h in config.history if not h.empty_layer)]
    missing = (History(created_by="(missing)"), "")
    return [entries[i] if i < len(entries) else missing for i in range(count)]


def _command(created_by: str) -> str:
    return created_by[len(SHELL_PREFIX):] if created_by.startswith(SHELL_PREFIX) else created_by
