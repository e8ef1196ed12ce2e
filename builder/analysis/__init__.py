"""Image analysis: dive's efficiency numbers exactly, why bytes are wasted, CI rules, the JSON
export, the HTML report and `cp`, over layers read as streams of typed entries from the store,
an archive, an OCI layout or a registry.  Imports registry, export, store, layer, oci and errors."""
