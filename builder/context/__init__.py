"""What ADD/COPY read and write: the build context and .dockerignore, --chown owners, archives,
downloads, checksums, copies into a root and COPY --from.  Imports layer, oci and errors."""
