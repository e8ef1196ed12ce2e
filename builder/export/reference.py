"""Docker image references as archives spell them (distribution/reference, normalised form).

``webapp`` → familiar ``webapp:latest``, full ``docker.io/library/webapp:latest``;
``me/app:1`` → ``docker.io/me/app:1``; a first component with a ``.`` or ``:`` or equal to
``localhost`` is a registry host and is kept.  Digest references (``name@sha256:…``) are not
tags and are refused where a tag is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.errors import ArchiveError
from builder.oci.reference import familiar_name, official_path, split_domain

_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class TaggedRef:
    domain: str
    path: str       # ``library/webapp`` for docker.io official images
    tag: str

    @property
    def full(self) -> str:
        """``docker.io/library/webapp:latest``: what ``io.containerd.image.name`` carries."""
        return f"{self.domain}/{self.path}:{self.tag}"

    @property
    def familiar(self) -> str:
        """``webapp:latest``: what docker's ``RepoTags`` and pybuild's tags carry."""
        return f"{self.familiar_name}:{self.tag}"

    @property
    def familiar_name(self) -> str:
        return familiar_name(self.domain, self.path)


def parse_tagged(ref: str, *, default_tag: str | None = "latest") -> TaggedRef:
    """Parse ``[domain/]path[:tag]``; raises ArchiveError "invalid tag" for anything else.

    ``default_tag`` None means the tag is required (as in a RepoTags entry)."""
    if not ref or "@" in ref or ref != ref.strip():
        raise ArchiveError(f"invalid tag {ref!r}")
    name, tag = ref, default_tag
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = ref.rsplit(":", 1)
    if tag is None or not _TAG.match(tag):
        raise ArchiveError(f"invalid tag {ref!r}: no valid tag")
    domain, path = split_domain(name)
    path = official_path(domain, path)
    if not all(_COMPONENT.match(c) for c in path.split("/")):
        raise ArchiveError(f"invalid tag {ref!r}: bad repository name")
    return TaggedRef(domain, path, tag)
