"""Containers (pybuild run/commit: image layers plus a writable layer) and the host mount of
`pybuild mount`.  Imports store, layer, oci and errors."""
