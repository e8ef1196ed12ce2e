"""Images in and out as files: docker-archive and OCI layout tars, rootfs import, AUFS-style
layer trees.  Imports store, inspect, layer, oci and errors."""
