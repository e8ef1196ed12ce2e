"""The local content-addressed store (the only code that knows its paths), the build cache,
df/prune, check, and ingest of layer tars.  Imports layer, oci and errors."""
