"""Image config and history (OCI image-spec config.md), pure.

An image is identified by the sha256 of its exact config bytes; ``config_bytes`` is the only
serialiser, and a stored config is never re-serialised (``parse`` keeps unknown keys so that a
loaded image round-trips).
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from builder.errors import ArchiveError
from builder.oci.digest import is_digest

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The container-config keys pybuild models; every other key is carried through untouched.
_MODELLED = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts")


@dataclass(frozen=True)
class History:
    created_by: str
    created: str = ""
    empty_layer: bool = False
    comment: str = ""
    author: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.created:
            out["created"] = self.created
        out["created_by"] = self.created_by
        if self.author:
            out["author"] = self.author
        if self.comment:
            out["comment"] = self.comment
        if self.empty_layer:
            out["empty_layer"] = True
        return out


@dataclass(frozen=True)
class RunConfig:
    """The ``config`` object of an image: what a container of it runs with."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: tuple[tuple[str, str], ...] | None = None
    exposed_ports: tuple[str, ...] | None = None
    other: tuple[tuple[str, Any], ...] = ()      # keys pybuild does not model, kept as loaded

    def env_get(self, key: str) -> str | None:
        for item in self.env:
            k, _, v = item.partition("=")
            if k == key:
                return v
        return None

    def with_env(self, key: str, value: str) -> RunConfig:
        """Replace ``key`` in place (docker keeps the order) or append it."""
        items = list(self.env)
        for i, item in enumerate(items):
            if item.partition("=")[0] == key:
                items[i] = f"{key}={value}"
                break
        else:
            items.append(f"{key}={value}")
        return replace(self, env=tuple(items))

    def with_label(self, key: str, value: str) -> RunConfig:
        labels = dict(self.labels or ())
        labels[key] = value
        return replace(self, labels=tuple(labels.items()))

    def with_port(self, port: str) -> RunConfig:
        ports = list(self.exposed_ports or ())
        if port not in ports:
            ports.append(port)
        return replace(self, exposed_ports=tuple(ports))

    def get_other(self, key: str) -> Any:
        """An unmodelled key (Volumes, Shell, Healthcheck, StopSignal, OnBuild, …); None if absent."""
        return dict(self.other).get(key)

    def with_other(self, key: str, value: Any) -> RunConfig:
        """Set an unmodelled key; ``None`` removes it (docker writes it as null)."""
        other = [(k, v) for k, v in self.other if k != key]
        if value is not None:
            other.append((key, value))
        return replace(self, other=tuple(other))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.other)
        out["Env"] = list(self.env) if self.env else None
        out["Cmd"] = list(self.cmd) if self.cmd is not None else None
        out["Entrypoint"] = list(self.entrypoint) if self.entrypoint is not None else None
        out["WorkingDir"] = self.working_dir
        out["User"] = self.user
        out["Labels"] = dict(self.labels) if self.labels is not None else None
        if self.exposed_ports is not None:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any] | None) -> RunConfig:
        obj = obj or {}

        def strs(key: str) -> tuple[str, ...] | None:
            v = obj.get(key)
            return None if v is None else tuple(str(x) for x in v)

        labels = obj.get("Labels")
        ports = obj.get("ExposedPorts")
        return cls(
            env=strs("Env") or (),
            cmd=strs("Cmd"),
            entrypoint=strs("Entrypoint"),
            working_dir=obj.get("WorkingDir") or "",
            user=obj.get("User") or "",
            labels=None if labels is None else tuple((str(k), str(v)) for k, v in labels.items()),
            exposed_ports=None if ports is None else tuple(ports),
            other=tuple((k, v) for k, v in obj.items() if k not in _MODELLED),
        )


@dataclass(frozen=True)
class ImageConfig:
    architecture: str
    os: str
    config: RunConfig
    diff_ids: tuple[str, ...] = ()
    history: tuple[History, ...] = ()
    created: str = ""
    author: str = ""
    other: tuple[tuple[str, Any], ...] = field(default=())   # unmodelled top-level keys

    def with_layer(self, diff_id: str, history: History) -> ImageConfig:
        return replace(self, diff_ids=self.diff_ids + (diff_id,), history=self.history + (history,),
                       created=history.created or self.created)

    def with_history(self, history: History) -> ImageConfig:
        assert history.empty_layer, "a history entry without a layer must be empty_layer"
        return replace(self, history=self.history + (history,), created=history.created or self.created)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.other)
        out["architecture"] = self.architecture
        out["os"] = self.os
        out["config"] = self.config.to_json()
        if self.created:
            out["created"] = self.created
        if self.author:
            out["author"] = self.author
        out["history"] = [h.to_json() for h in self.history]
        out["rootfs"] = {"type": "layers", "diff_ids": list(self.diff_ids)}
        return out


def empty_config() -> ImageConfig:
    """The config of ``FROM scratch``: docker's classic builder starts with only PATH."""
    return ImageConfig(architecture=host_architecture(), os="linux",
                       config=RunConfig(env=(DEFAULT_PATH,)))


def ensure_default_path(cfg: ImageConfig) -> ImageConfig:
    """Docker adds the default PATH when the base config has none."""
    if cfg.config.env_get("PATH") is not None:
        return cfg
    return replace(cfg, config=replace(cfg.config, env=(DEFAULT_PATH,) + cfg.config.env))


def config_bytes(cfg: ImageConfig) -> bytes:
    """The one serialisation of a config.  Its sha256 is the image ID."""
    return json.dumps(cfg.to_json(), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def parse_config(data: bytes) -> ImageConfig:
    """Validate and parse config bytes (from the store, a docker-archive or an OCI layout)."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArchiveError(f"image config is not valid JSON: {e}") from e
    if not isinstance(obj, dict) or not isinstance(obj.get("rootfs"), dict):
        raise ArchiveError("invalid image config: no rootfs")
    rootfs = obj["rootfs"]
    if rootfs.get("type") != "layers":
        raise ArchiveError(f"invalid image config: rootfs.type {rootfs.get('type')!r}")
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) and is_digest(d) for d in diff_ids):
        raise ArchiveError("invalid image config: rootfs.diff_ids must be sha256 digests")
    raw_history = obj.get("history") or []
    if not isinstance(raw_history, list) or not all(isinstance(h, dict) for h in raw_history):
        raise ArchiveError("invalid image config: history must be a list of objects")
    history = tuple(
        History(created_by=_text(h, "created_by"), created=_text(h, "created"),
                empty_layer=bool(h.get("empty_layer")), comment=_text(h, "comment"),
                author=_text(h, "author"))
        for h in raw_history)
    known = {"architecture", "os", "config", "rootfs", "history", "created", "author"}
    return ImageConfig(
        architecture=obj.get("architecture", ""), os=obj.get("os", ""),
        config=RunConfig.from_json(obj.get("config")),
        diff_ids=tuple(diff_ids), history=history,
        created=_text(obj, "created"), author=_text(obj, "author"),
        other=tuple((k, v) for k, v in obj.items() if k not in known))


def _text(obj: dict[str, Any], key: str) -> str:
    """A string field that may be absent or null (both mean "")."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ArchiveError(f"invalid image config: {key} must be a string")
    return value


def now_rfc3339() -> str:
    """Docker's ``created`` format: RFC 3339 with nanoseconds, UTC, ``Z``."""
    t = datetime.now(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


def rfc3339_of(epoch: int) -> str:
    """A SOURCE_DATE_EPOCH as docker writes times: ``2023-01-01T00:00:00Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)
