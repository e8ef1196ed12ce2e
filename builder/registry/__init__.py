"""The Docker registry transport (OCI distribution API v2), as containers/image arranges it:
``reference`` (what a name means), ``auth`` (challenges, tokens, stored credentials),
``client`` (HTTP: manifests and blobs, verified), ``pull`` (read side), ``push`` (write side),
``records`` (what the store remembers about registries: compressed blobs, where blobs live).

RegistryError lives in builder.errors with every other error; the name is kept here only
for builder/build/session.py, which imports it from this package until its rewrite lands.
"""

from __future__ import annotations

from builder.errors import RegistryError

__all__ = ["RegistryError"]
