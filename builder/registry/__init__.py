"""The Docker registry transport (OCI distribution API v2), as containers/image arranges it:
``reference`` (what a name means), ``auth`` (challenges, tokens, stored credentials),
``client`` (HTTP: manifests and blobs, verified), ``pull`` (read side), ``push`` (write side),
``records`` (what the store remembers about registries: compressed blobs, where blobs live).
"""

from __future__ import annotations

from builder.errors import PybuildError


class RegistryError(PybuildError):
    """A registry could not be reached, refused us, or sent something that does not verify."""
