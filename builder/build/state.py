"""What the build's stages pass each other: the options of one build, the state of the image
being built, which step is running, and the scope a handler reads.  Frozen values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builder.buildfile.instructions import Position
from builder.errors import PybuildError, StepError

if TYPE_CHECKING:
    from builder.build.runmounts import SecretSource
    from builder.build.sshforward import SshSource
from builder.oci.config import ImageConfig, RunConfig
from builder.oci.createdby import DEFAULT_SHELL

#: --snapshotter values (build/snapshotter.py): try overlay and fall back, or force one.
SNAPSHOTTERS = ("auto", "overlay", "copy")


@dataclass(frozen=True)
class BuildOptions:
    buildfile: Path
    context: Path
    tags: tuple[str, ...] = ()
    no_cache: bool = False        # run every step (results are still recorded in the cache)
    explain: str | None = None    # "text" or "json": record how every step became a layer
    source_date_epoch: int | None = None   # reproducible: clamp mtimes, date history from it
    build_args: tuple[tuple[str, str], ...] = ()   # --build-arg K=V, in command-line order
    target: str | None = None     # --target: build up to this stage (name, case-insensitive)
    pull: str = "missing"         # FROM images: "missing" pulls what the store lacks, "never", "always"
    insecure: bool = False        # plain http to registries (loopback hosts always are)
    cache_from: tuple[str, ...] = ()   # registry refs of exported build caches to use
    cache_to: str | None = None   # registry ref to export this build's cache to
    secrets: tuple[SecretSource, ...] = ()   # --secret: where each value is (never the value)
    ssh: tuple[SshSource, ...] = ()          # --ssh: agent sockets or key files by id
    snapshotter: str | None = None           # --snapshotter (SNAPSHOTTERS); None: $PYBUILD_SNAPSHOTTER or auto


@dataclass(frozen=True)
class State:
    """The image being built after some steps."""

    config: ImageConfig
    chain: tuple[str, ...] = ()   # chain IDs of its layers, base first
    cmd_set: bool = False         # a CMD was given in this stage (ENTRYPOINT then keeps Cmd)
    args: tuple[tuple[str, str], ...] = ()        # ARGs declared in this stage that have a value
    proxy_args: tuple[tuple[str, str], ...] = ()  # undeclared proxy --build-args (RUN env only)
    maintainer: str = ""          # MAINTAINER: author of every later history entry and the image

    @property
    def run_config(self) -> RunConfig:
        return self.config.config

    @property
    def shell(self) -> tuple[str, ...]:
        """The SHELL in force (config ``Shell``), ``/bin/sh -c`` by default."""
        shell = self.config.config.get_other("Shell")
        return tuple(shell) if shell else DEFAULT_SHELL


@dataclass(frozen=True)
class StepRef:
    """Which step is running: ``Step number/total : original``, and where it is written."""

    number: int
    total: int
    original: str
    pos: Position | None = None

    def error(self, reason: str, exit_code: int | None = None) -> StepError:
        """The error of this step: ``Buildfile:LINE: step N/M: <instruction>: <reason>``."""
        return StepError(step=self.number, total=self.total, instruction=self.original, reason=reason,
                         exit_code=exit_code, file=self.pos.file if self.pos else "",
                         line=self.pos.line if self.pos else 0)

    def wrap(self, error: PybuildError) -> StepError:
        """``error`` (raised while this step ran, saying no where) as this step's error; pybuild
        still exits as the original error says (1 for most, 2 for usage)."""
        wrapped = self.error(str(error))
        wrapped.exit_code = error.exit_code
        return wrapped


@dataclass(frozen=True)
class Scope:
    """What a handler reads besides the state, fixed while a stage is built: the Buildfile's
    escape character, the ``--build-arg`` values, the resolved meta ARGs (before the first
    FROM), and the stage names (lower-cased, by index) with the index of the current stage."""

    escape: str = "\\"
    build_args: tuple[tuple[str, str], ...] = ()
    meta_args: tuple[tuple[str, str], ...] = ()
    stage_names: tuple[str | None, ...] = ()
    stage: int = 0

    def build_arg(self, name: str) -> str | None:
        """The last ``--build-arg name=…`` given, or None."""
        value = None
        for key, given in self.build_args:
            if key == name:
                value = given
        return value

    def stage_index(self, value: str) -> int | None:
        """The index of an earlier-or-current stage called ``value`` (a name or an index)."""
        if value.isdigit():
            return int(value) if int(value) < len(self.stage_names) else None
        lowered = value.lower()
        for i, name in enumerate(self.stage_names[:self.stage + 1]):
            if name == lowered:
                return i
        return None
