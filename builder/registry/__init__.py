"""The Docker registry transport (OCI distribution API v2), as containers/image arranges it:
reference, auth, client (HTTP), pull (read side), push (write side), records, remote cache.
Imports store, oci and errors."""
