"""``RUN --mount=…``, ``--network=…`` and ``--security=…``: the values as BuildKit reads them.
Pure.  [BuildKit: frontend/dockerfile/instructions/commands_runmount.go, docs/reference.md]

A mount value is one CSV record of ``key=value`` fields (``readonly``/``rw``/``required`` may
stand alone).  Keys and their aliases: ``type``, ``from``, ``source``/``src``,
``target``/``dst``/``destination``, ``readonly``/``ro``, ``readwrite``/``rw``, ``id``,
``sharing``, ``required``, ``mode``, ``uid``, ``gid``, ``size``, ``env``.  The type defaults to
``bind``; bind, secret and ssh mounts are read-only unless ``rw``, cache and tmpfs read-write.

``parse_mount`` validates one value and fills in BuildKit's defaults that do not depend on the
image: a cache's ``id`` is its target, a secret's ``id`` is its source or the target's base
name and its target ``/run/secrets/<id>`` (unless ``env`` exposes it instead), an ssh mount's
``id`` is ``default`` and its target ``/run/buildkit/ssh_agent.<N>``.  A relative or missing
target is joined to the working directory later, by the handler (so a bind without target
under ``WORKDIR /app`` is on /app, as in BuildKit; one that ends on / is refused there).
"""

from __future__ import annotations

import difflib
import json
import posixpath
import re
from dataclasses import dataclass

from builder.errors import MountError

TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING = ("shared", "private", "locked")
NETWORKS = ("default", "none", "host")
SECURITY = ("sandbox", "insecure")
KEYS = ("type", "from", "source", "target", "readonly", "id", "sharing", "required", "mode", "uid", "gid",
        "src", "dst", "destination", "ro", "rw", "readwrite", "size", "env")
_ALIASES = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly", "rw": "readwrite"}
_RAM = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([kmgtp])?i?b?\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


@dataclass(frozen=True)
class MountSpec:
    """One ``--mount``, validated, with BuildKit's defaults.  ``mode``/``uid``/``gid`` None: the
    type's default (cache dir 0755 0:0, secret file 0400 0:0, ssh socket 0600 0:0)."""

    type: str
    target: str
    source: str = ""
    from_: str | None = None          # bind/cache: a stage or image; None: context / empty dir
    readonly: bool = True
    id: str = ""
    sharing: str = "shared"
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None           # tmpfs: bytes, None for the kernel's default
    env: str | None = None            # secret: exposed as this variable instead of a file


def parse_mount(value: str, *, ssh_index: int = 0) -> MountSpec:
    """Validate one ``--mount`` value (already expanded); ``ssh_index`` numbers ssh mounts for
    their default target.  Raises MountError with BuildKit's message.

    Fields are read in order, as BuildKit does: ``required`` and ``size`` are checked against
    the type given *before* them (``required,type=secret`` is refused, as there).  A missing
    target is not an error here: the handler joins it to the working directory."""
    fields = _csv_record(value)
    raw: dict[str, str | None] = {}
    kind = "bind"
    for field_ in fields:
        written, eq, val = field_.partition("=")
        written = written.lower()
        key = _ALIASES.get(written, written)
        if not eq and key not in ("readonly", "readwrite", "required"):
            raise MountError(f"invalid field '{field_}' must be a key=value pair", at=field_)
        if key not in {_ALIASES.get(k, k) for k in KEYS}:
            raise MountError(f"unexpected key '{written}' in '{field_}'", _suggest(written, KEYS), at=field_)
        if key == "type":
            kind = val.lower()
            if kind not in TYPES:
                raise MountError(f"unsupported mount type {_q(val)}", _suggest(kind, TYPES), at=field_)
        elif key == "required" and kind not in ("secret", "ssh"):
            raise MountError(f"unexpected key '{written}' for mount type '{kind}'", at=field_)
        elif key == "size" and kind != "tmpfs":
            raise MountError(f"unexpected key '{written}' for mount type '{kind}'", at=field_)
        elif key in ("readonly", "readwrite", "required") and eq:
            _bool(val, written, at=field_)
        raw[key] = val if eq else None
    return _spec(kind, raw, ssh_index)


def _spec(kind: str, raw: dict[str, str | None], ssh_index: int) -> MountSpec:
    file_info = kind in ("secret", "ssh", "cache")
    sharing = (raw.get("sharing") or "shared").lower()
    if "sharing" in raw and sharing not in SHARING:
        raise MountError(f"unsupported sharing value {_q(raw['sharing'] or '')}", _suggest(sharing, SHARING),
                         at="sharing=")
    mode, uid, gid = _number(raw, "mode", 8), _number(raw, "uid", 10), _number(raw, "gid", 10)
    for key in ("mode", "uid", "gid"):
        if key in raw and not file_info:
            raise MountError(f"{key} not allowed for {_q(kind)} type mounts", at=f"{key}=")
    if "env" in raw and kind != "secret":
        raise MountError(f"unexpected key 'env' for mount type '{kind}'", at="env=")
    readonly = kind not in ("cache", "tmpfs")
    if "readonly" in raw:
        readonly = _bool(raw["readonly"], "readonly")
    if "readwrite" in raw:
        readonly = not _bool(raw["readwrite"], "readwrite")
    target = raw.get("target") or ""
    source = raw.get("source") or ""
    mount_id = raw.get("id") or ""
    from_ = raw.get("from") or None
    if kind == "secret" and from_ is not None:
        raise MountError("secret mount should not have a from")
    if "sharing" in raw and kind != "cache":
        raise MountError(f"invalid cache sharing set for {kind} mount", at="sharing=")
    if kind == "secret":
        if not source and not target and not mount_id:
            raise MountError("invalid secret mount. one of source, target required",
                             "usage: --mount=type=secret,id=ID[,target=PATH|,env=VAR]")
        if source and mount_id:
            raise MountError("both source and id can't be set")
        mount_id = source or mount_id or posixpath.basename(target)
        env = raw.get("env") or None
        if not target and env is None:
            target = "/run/secrets/" + posixpath.basename(mount_id)
        source = ""
    if kind == "ssh":
        if source:
            raise MountError("ssh does not support source")
        mount_id = mount_id or "default"
        target = target or f"/run/buildkit/ssh_agent.{ssh_index}"
    if kind == "cache":
        mount_id = mount_id or target
    if kind == "tmpfs" and from_ is not None:
        raise MountError("tmpfs mount should not have a from")
    return MountSpec(type=kind, target=target, source=source, from_=from_, readonly=readonly, id=mount_id,
                     sharing=sharing, required=_bool(raw["required"], "required") if "required" in raw else False,
                     mode=mode, uid=uid, gid=gid, size=_ram(raw.get("size")),
                     env=raw.get("env") or None if kind == "secret" else None)


def _csv_record(value: str) -> list[str]:
    """One record of Go's encoding/csv (BuildKit reads a mount value so): a field that starts
    with a double quote is quoted (``""`` is a quote in it) and ends at a quote followed by a
    comma or the end; a quote anywhere else is an error, as in Go (Python's csv lets it be)."""
    fields: list[str] = []
    i, n = 0, len(value)
    while True:
        if i < n and value[i] == '"':
            out, i = [], i + 1
            while True:
                j = value.find('"', i)
                if j < 0:
                    raise MountError('failed to parse csv mounts: extraneous or missing " in quoted-field')
                out.append(value[i:j])
                if value.startswith('""', j):
                    out.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            if i < n and value[i] != ",":
                raise MountError('failed to parse csv mounts: extraneous or missing " in quoted-field')
            fields.append("".join(out))
        else:
            j = value.find(",", i)
            j = n if j < 0 else j
            if '"' in value[i:j]:
                raise MountError('failed to parse csv mounts: bare " in non-quoted field')
            fields.append(value[i:j])
            i = j
        if i >= n:
            return fields
        i += 1                                           # past the comma


def _q(text: str) -> str:
    """Go's %q, as BuildKit's messages quote values."""
    return json.dumps(text, ensure_ascii=False)


def _bool(value: str | None, key: str, *, at: str = "") -> bool:
    """Go's strconv.ParseBool; a key standing alone is true."""
    if value is None:
        return True
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise MountError(f"invalid value for {key}: {value}", "true or false (also 1, t, T, TRUE, 0, f, F, FALSE)",
                     at=at)


def _number(raw: dict[str, str | None], key: str, base: int) -> int | None:
    """Go's strconv.ParseUint(text, base, 32): ASCII digits of the base, no sign, no prefix."""
    if key not in raw:
        return None
    text = raw[key] or ""
    digits = "[0-7]" if base == 8 else "[0-9]"
    number = int(text, base) if re.fullmatch(f"{digits}+", text) else -1
    if not 0 <= number <= 0xFFFFFFFF:
        hint = "mode is octal (0755); uid and gid are decimal numbers"
        raise MountError(f"invalid value {text} for {key}", hint, at=f"{key}=")
    return number


def _ram(text: str | None) -> int | None:
    """go-units RAMInBytes: ``64m``, ``1g``, ``512kb``, ``1 GiB``, ``100`` — binary multiples."""
    if text is None:
        return None
    m = _RAM.match(text)
    if m is None:
        raise MountError(f"invalid value for size: {text}", "sizes look like 64m, 1g or 1048576")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def parse_network(value: str) -> str:
    if value not in NETWORKS:
        raise MountError(f"unsupported network mode {_q(value)}", _suggest(value, NETWORKS), at=value)
    return value


def parse_security(value: str) -> str:
    if value not in SECURITY:
        raise MountError(f"unsupported security mode {_q(value)}", _suggest(value, SECURITY), at=value)
    return value


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word.lower(), choices, n=1)
    known = ", ".join(c for c in choices if c not in _ALIASES)
    return f"did you mean {close[0]}? (one of: {known})" if close else f"one of: {known}"
