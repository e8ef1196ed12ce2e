"""Registry authentication: ``WWW-Authenticate`` challenges (RFC 7235), the Bearer token flow
(distribution's token.md), Basic, and where credentials come from.

Credentials are looked up in pybuild's own ``<store>/auth.json`` first, then in
``~/.docker/config.json``; both use docker's shape ``{"auths": {"<host>": {"auth":
base64("user:password")}}}``.  ``save_credentials`` writes auth.json with mode 0600.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import RegistryError
from builder.registry.reference import registry_host
from builder.store.store import Store

MIN_TOKEN_LIFETIME = 60          # seconds; the spec's default and minimum for expires_in

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN68_FORM = re.compile(r"[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*(?:,|$)")


@dataclass(frozen=True)
class Challenge:
    scheme: str                           # lower-case: "bearer", "basic", …
    params: dict[str, str] = field(default_factory=dict)   # keys lower-case, values unquoted

    @property
    def scopes(self) -> list[str]:
        """``scope`` may list several scopes separated by spaces."""
        return self.params.get("scope", "").split()


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Every challenge of a ``WWW-Authenticate`` value.  Quoted strings may hold commas and
    escaped quotes (``scope="repository:a:pull,push"``), so the header is tokenised, never split
    on ``,``.  A malformed tail ends the parse; what was understood before it is kept."""
    challenges: list[Challenge] = []
    pos, n = 0, len(header)
    scheme_re = re.compile(r"[ \t,]*(" + _TOKEN + r")")
    param_re = re.compile(r"[ \t]*(" + _TOKEN + r")[ \t]*=[ \t]*")
    while pos < n:
        m = scheme_re.match(header, pos)
        if not m:
            break
        scheme, pos = m.group(1).lower(), m.end()
        params: dict[str, str] = {}
        t = _TOKEN68_FORM.match(header, pos)
        if t:                                               # token68 form: "Negotiate abc=="
            challenges.append(Challenge(scheme, {"": t.group(1)}))
            pos = t.end()
            continue
        while pos < n:
            p = param_re.match(header, pos)
            if not p:
                break
            pos = p.end()
            if pos < n and header[pos] == '"':
                value, pos = _quoted(header, pos)
            else:
                v = re.compile(_TOKEN).match(header, pos)
                if not v:
                    break
                value, pos = v.group(0), v.end()
            params[p.group(1).lower()] = value
            c = re.compile(r"[ \t]*,").match(header, pos)
            if not c:
                break
            # a comma then "token =" continues this challenge; "token" alone starts the next
            look = param_re.match(header, c.end())
            if not look:
                pos = c.end()
                break
            pos = c.end()
        challenges.append(Challenge(scheme, params))
    return challenges


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """RFC 7230 quoted-string at ``text[pos] == '"'`` → (unescaped value, position after it)."""
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    return "".join(out), i                                  # unterminated: take the rest


# -- credentials -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    source: str              # the file they came from, for error messages

    def describe(self) -> str:
        return f"user {self.username!r} from {self.source}"

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def _auth_keys(host: str) -> set[str]:
    return {host, "index.docker.io", "registry-1.docker.io"} if host == "docker.io" else {host}


def _read_auths(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise RegistryError(f"read credentials {path}: {e}") from e
    auths = obj.get("auths") if isinstance(obj, dict) else None
    return auths if isinstance(auths, dict) else {}


def load_credentials(host: str, *, auth_file: Path | None, home: Path | None = None) -> Credentials | None:
    """Credentials for registry ``host`` (``host[:port]`` or ``docker.io``) from ``auth_file``
    (the store's, may be None) or ``~/.docker/config.json``; None if neither has them."""
    home = home if home is not None else Path(os.environ.get("HOME") or "~").expanduser()
    files = ([auth_file] if auth_file is not None else []) + [home / ".docker" / "config.json"]
    for path in files:
        for key, entry in _read_auths(path).items():
            try:
                if registry_host(key) not in _auth_keys(host) or not isinstance(entry, dict):
                    continue
            except RegistryError:
                continue
            if entry.get("auth"):
                try:
                    user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError) as e:
                    raise RegistryError(f"{path}: bad auth entry for {key}: {e}") from e
                if sep:
                    return Credentials(user, password, str(path))
            if entry.get("username") and entry.get("password") is not None:
                return Credentials(entry["username"], entry["password"], str(path))
    return None


def save_credentials(store: Store, host: str, username: str, password: str) -> Path:
    """Add or replace ``host``'s entry in the store's auth.json (mode 0600, atomic)."""
    path = store.auth_path()
    try:
        obj = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        obj = {}
    if not isinstance(obj, dict) or not isinstance(obj.get("auths"), dict):
        obj = {"auths": {}}
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    obj["auths"][host] = {"auth": token}
    store.atomic_write(path, json.dumps(obj, indent=1, sort_keys=True).encode())
    os.chmod(path, 0o600)
    return path


# -- bearer tokens -----------------------------------------------------------------------------
@dataclass
class BearerToken:
    token: str
    scopes: frozenset[str]
    expires: float

    def covers(self, scopes: set[str]) -> bool:
        return scopes <= self.scopes and time.monotonic() < self.expires


def token_from_response(body: object, scopes: frozenset[str], realm: str) -> BearerToken:
    """``{"token"|"access_token": …, "expires_in": s}`` → a BearerToken (RegistryError if neither)."""
    if not isinstance(body, dict):
        raise RegistryError(f"token server {realm} answered something that is not a JSON object")
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str) or not token:
        raise RegistryError(f"token server {realm} sent no token")
    try:
        lifetime = max(int(body.get("expires_in") or MIN_TOKEN_LIFETIME), MIN_TOKEN_LIFETIME)
    except (TypeError, ValueError):
        lifetime = MIN_TOKEN_LIFETIME
    return BearerToken(token, scopes, time.monotonic() + lifetime - 5)
