"""Registry references as docker spells them (distribution/reference, normalised form).

``debian`` → ``docker.io/library/debian:latest``; ``me/app:1`` → ``docker.io/me/app:1``;
``127.0.0.1:5000/team/base:1.2`` keeps its host; ``name@sha256:<hex>`` pins a digest (a tag
before it, ``name:tag@sha256:…``, is kept for display but the digest wins).  A first component
is a registry host when it holds a ``.`` or a ``:`` or is ``localhost``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.errors import RegistryError
from builder.oci.digest import is_digest
from builder.oci.reference import DEFAULT_DOMAIN, LEGACY_DOMAIN, familiar_name, official_path, split_domain

#: Where Docker Hub's API lives; as a name's domain it means docker.io too.
DOCKER_HUB_API = "registry-1.docker.io"
_LEGACY_DOMAINS = (LEGACY_DOMAIN, DOCKER_HUB_API)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class RegistryRef:
    domain: str              # ``docker.io`` or ``host[:port]``
    path: str                # ``library/debian`` for official images on docker.io
    tag: str | None          # None only when ``digest`` is set
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """Where the API lives: docker.io's is registry-1.docker.io."""
        return DOCKER_HUB_API if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def hostname(self) -> str:
        """The host without its port (``[::1]`` keeps its brackets)."""
        if self.domain.startswith("["):
            return self.domain.split("]")[0] + "]"
        return self.domain.rsplit(":", 1)[0]

    @property
    def is_loopback(self) -> bool:
        return self.hostname in _LOOPBACK

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def familiar_name(self) -> str:
        return familiar_name(self.domain, self.path)

    @property
    def familiar(self) -> str:
        """``debian:bookworm``, ``127.0.0.1:5000/team/base:1.2``, ``name@sha256:…``: the store tag."""
        if self.digest and not self.tag:
            return f"{self.familiar_name}@{self.digest}"
        return f"{self.familiar_name}:{self.tag}"

    @property
    def full(self) -> str:
        text = f"{self.domain}/{self.path}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_digest(self, digest: str) -> RegistryRef:
        return RegistryRef(self.domain, self.path, self.tag, digest)


def parse_reference(ref: str, *, default_tag: str = "latest") -> RegistryRef:
    """Parse ``[host[:port]/]path[:tag][@sha256:hex]``; RegistryError says what is wrong."""
    if not ref or ref != ref.strip() or any(c.isspace() for c in ref):
        raise RegistryError(f"invalid reference {ref!r}: empty or contains whitespace")
    rest, at, tail = ref.partition("@")
    if at and not is_digest(tail):
        raise RegistryError(f"invalid reference {ref!r}: {tail!r} is not a sha256:<64 hex> digest")
    digest = tail if at else None
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest.rsplit(":", 1)
        if not _TAG.match(tag):
            raise RegistryError(f"invalid reference {ref!r}: bad tag {tag!r} "
                                f"(letters, digits, _ . -; at most 128; not starting with . or -)")
    if tag is None and digest is None:
        tag = default_tag
    domain, path = split_domain(name)
    if not _HOST.match(domain):
        raise RegistryError(f"invalid reference {ref!r}: bad registry host {domain!r}")
    if domain == DOCKER_HUB_API:
        domain = DEFAULT_DOMAIN
    if not path:
        raise RegistryError(f"invalid reference {ref!r}: no repository name")
    path = official_path(domain, path)
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            hint = " (repository names must be lowercase)" if component.lower() != component else ""
            raise RegistryError(f"invalid reference {ref!r}: bad repository name component "
                                f"{component!r}{hint}")
    if len(domain) + 1 + len(path) > 255:
        raise RegistryError(f"invalid reference {ref!r}: repository name longer than 255 characters")
    return RegistryRef(domain, path, tag, digest)


def registry_host(text: str) -> str:
    """A registry as ``pybuild login`` and config files name it → ``host[:port]`` (docker.io for
    Docker Hub's many spellings)."""
    host = text.strip()
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix):]
    host = host.split("/", 1)[0]
    if host in _LEGACY_DOMAINS or host == DEFAULT_DOMAIN:
        return DEFAULT_DOMAIN
    if not host or not _HOST.match(host):
        raise RegistryError(f"invalid registry {text!r}: expected host[:port]")
    return host
