"""Pure formats of the OCI image spec and docker: digests and chain IDs, the image config and
history, manifests and indexes, references, docker's created_by strings.  Imports only errors."""
