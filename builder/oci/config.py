"""Image config, history and manifest (OCI image-spec config.md / manifest.md), pure.

An image is identified by the sha256 of its exact config bytes; ``config_bytes`` is the only
serialiser, and a stored config is never re-serialised (``parse`` keeps unknown keys so that a
loaded image round-trips).  ``created_by`` strings follow docker's classic builder.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from builder.oci.digest import is_digest
from builder.errors import ArchiveError

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)

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


def manifest_bytes(*, config_digest: str, config_size: int,
                   layers: list[tuple[str, int]]) -> bytes:
    """An OCI image manifest for uncompressed layers ``[(digest, size), …]``, base first."""
    obj = {
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": MEDIA_OCI_LAYER, "digest": d, "size": s} for d, s in layers],
    }
    return json.dumps(obj, separators=(",", ":")).encode()


def now_rfc3339() -> str:
    """Docker's ``created`` format: RFC 3339 with nanoseconds, UTC, ``Z``."""
    t = datetime.now(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


def rfc3339_of(epoch: int) -> str:
    """A SOURCE_DATE_EPOCH as docker writes times: ``2023-01-01T00:00:00Z``."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


# -- created_by, as docker's classic builder writes it --------------------------------------
DEFAULT_SHELL = ("/bin/sh", "-c")
NOP = "/bin/sh -c #(nop) "          # under the default SHELL; nop_prefix() for any other


def go_quote(s: str) -> str:
    """Go's strconv.Quote: double-quoted, with Go escapes for control and non-printable runes."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:          # an undecodable byte (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif not ch.isprintable() and code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote_list(items: tuple[str, ...] | list[str]) -> str:
    """``fmt.Sprintf("%q", []string{…})``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def nop_prefix(shell: tuple[str, ...] = DEFAULT_SHELL) -> str:
    """``/bin/sh -c #(nop) ``: docker's pseudo-command under the current SHELL (one space)."""
    return " ".join(shell) + " #(nop) "


def created_by_nop(text: str, shell: tuple[str, ...] = DEFAULT_SHELL) -> str:
    """Metadata steps: ``/bin/sh -c #(nop)  CMD […]`` — two spaces, as docker writes it."""
    return nop_prefix(shell) + " " + text


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1.5s``, ``5m0s``, ``1h0m0s``, ``500ms``."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _go_frac(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return sign + out + _go_frac(rest, 1_000_000_000) + "s"


def _go_frac(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def go_quote_rune(n: int) -> str:
    """Go's ``%q`` of an int: a quoted rune literal (``'\\x03'``, ``'A'``)."""
    ch = chr(n)
    if ch == "'" or ch == "\\":
        return "'\\" + ch + "'"
    if ch in _GO_ESCAPES:
        return "'" + _GO_ESCAPES[ch] + "'"
    if n < 0x20 or n == 0x7F:
        return f"'\\x{n:02x}'"
    if not ch.isprintable():
        return f"'\\u{n:04x}'" if n <= 0xFFFF else f"'\\U{n:08x}'"
    return f"'{ch}'"
