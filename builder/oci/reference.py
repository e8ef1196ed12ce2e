"""How docker normalises an image name (distribution/reference), shared by the registry
transport and the archive formats.  Pure.

``debian`` → domain ``docker.io``, path ``library/debian``; ``me/app`` → ``docker.io``,
``me/app``; ``127.0.0.1:5000/team/base`` keeps its host.  The first component is a registry
host when it holds a ``.`` or a ``:``, is ``localhost``, or has an upper-case letter (a
repository name never does); ``index.docker.io`` is the old name of ``docker.io``.  Tags,
digests and validation of the components are the callers' (each says what is wrong in its
own error type).
"""

from __future__ import annotations

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"


def split_domain(name: str) -> tuple[str, str]:
    """``[domain/]path`` (no tag, no digest) → (domain, path): the domain as written
    (``index.docker.io`` read as ``docker.io``), or ``docker.io`` when ``name`` has none.
    The path is returned as written (``official_path`` adds ``library/``)."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    return domain, path


def official_path(domain: str, path: str) -> str:
    """A one-component name on docker.io is an official image: ``debian`` → ``library/debian``."""
    if domain == DEFAULT_DOMAIN and "/" not in path:
        return OFFICIAL_PREFIX + path
    return path


def familiar_name(domain: str, path: str) -> str:
    """docker's short form: ``docker.io/library/debian`` → ``debian``; other registries keep
    their host (``127.0.0.1:5000/team/base``)."""
    if domain != DEFAULT_DOMAIN:
        return f"{domain}/{path}"
    if path.startswith(OFFICIAL_PREFIX) and path.count("/") == 1:
        return path[len(OFFICIAL_PREFIX):]
    return path
