"""Step descriptions: what a handler decides a step does, before anything is done.

Handlers (dispatch/) turn an instruction and the state before it into one of these frozen
values; the executor carries them out (cache lookup, mount, run, copy, capture, commit).  A
description is also the input of the step's cache key: ``canonical()`` serialises it as JSON
with sorted keys, under a fixed ``kind`` name, leaving out the fields marked ``RUNTIME`` (what
must not change a key, such as proxy variables in a RUN's environment).  Renaming code never
changes a key; changing what a step does always does.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from builder.buildfile.runmount import MountSpec
from builder.context.chmod import Chmod
from builder.oci.config import RunConfig

#: Field metadata for what a step needs at run time but its cache key must not see.
RUNTIME = {"cache_key": False}


@dataclass(frozen=True)
class Step:
    """Base of every description; ``kind`` names it in the cache key."""

    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class FromStep(Step):
    """``FROM``: start from an image (a store or registry reference) or an earlier stage."""

    kind: ClassVar[str] = "from"
    image: str                                   # the reference as expanded
    stage: int | None = None                     # an earlier stage's index, else None
    proxy_args: tuple[tuple[str, str], ...] = ()  # --build-arg proxies, for RUN env


@dataclass(frozen=True)
class ConfigStep(Step):
    """A config-only step: the new run config and an ``empty_layer`` history entry.  ``None``
    in ``cmd_set``/``maintainer``/``args`` means "unchanged"."""

    kind: ClassVar[str] = "config"
    created_by: str
    run_config: RunConfig
    cmd_set: bool | None = None
    maintainer: str | None = None
    # ARG values are RUN environment, never config: a value nothing uses must not miss the cache
    args: tuple[tuple[str, str], ...] | None = field(default=None, metadata=RUNTIME)
    consumed: frozenset[str] = field(default=frozenset(), metadata=RUNTIME)  # --build-args used


@dataclass(frozen=True)
class Script:
    """A file present only while a RUN runs (a heredoc with ``#!``), never in the layer."""

    path: str                       # absolute inside the rootfs
    body: bytes


@dataclass(frozen=True)
class RunStep(Step):
    """``RUN``: execute ``argv`` over the union; what it writes becomes the layer."""

    kind: ClassVar[str] = "run"
    argv: tuple[str, ...]
    created_by: str
    # config Env plus the ARGs in scope; proxy args are here only, so the key never sees them
    env: tuple[str, ...] = field(default=(), metadata=RUNTIME)
    script: Script | None = None
    mounts: tuple[MountSpec, ...] = ()        # RUN --mount, targets absolute
    network: str = "default"                  # RUN --network: default (the host's), none, host


@dataclass(frozen=True)
class WorkdirStep(Step):
    """``WORKDIR``: ``mkdir -p`` in the rootfs (a layer when it creates something), then the
    config's working dir."""

    kind: ClassVar[str] = "workdir"
    path: str
    created_by: str


@dataclass(frozen=True)
class CopyFlags:
    """ADD/COPY flags, parsed and expanded once.  ``chown`` None: 0:0 (or the source's owner
    with ``--from``); ``chmod`` None: the source's bits; ``exclude`` the --exclude patterns;
    ``checksum`` the hex of ``ADD --checksum=sha256:<hex>``."""

    chown: str | None = None
    chmod: Chmod | None = None
    exclude: tuple[str, ...] = ()
    from_: str | None = None
    checksum: str | None = None
    link: bool = False
    parents: bool = False           # COPY --parents: keep the sources' parent dirs (``/./`` pivots)


@dataclass(frozen=True)
class CopySource:
    """One source word: a path (in the context, or in the ``--from`` image), a URL (ADD), or
    a heredoc (``<<EOF``) whose body, expanded where the delimiter allows, is ``content``."""

    word: str
    heredoc: str | None = None      # the delimiter name
    content: str = ""


@dataclass(frozen=True)
class CopyStep(Step):
    """``ADD``/``COPY``: sources into ``target``.  ``created_by`` needs the sources' checksum,
    known only once they are read: ``created_by(checksum)``."""

    kind: ClassVar[str] = "copy"
    keyword: str                    # "ADD" or "COPY"
    sources: tuple[CopySource, ...]
    dest: str                       # as written (expanded): created_by shows it
    target: str                     # absolute in the rootfs; a trailing "/" is kept
    flags: CopyFlags
    nop_prefix: str                 # ``<shell> #(nop) `` under the SHELL of the step

    def created_by(self, checksum: str) -> str:
        shown = f"--chown={self.flags.chown} " if self.flags.chown else ""
        return f"{self.nop_prefix}{self.keyword} {shown}{checksum} in {self.dest} "


def canonical(step: Step) -> str:
    """The cache key's view of ``step``: JSON, keys sorted, ``RUNTIME`` fields left out."""
    return json.dumps({"kind": step.kind, **_plain(step)}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, RunConfig):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.metadata.get("cache_key", True)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (frozenset, set)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value
