"""How a directory becomes a layer and back: whiteouts, the tar writer, capture, unpack,
overlay mounts, the RUN sandbox, paths resolved inside a root.  Imports oci and errors."""
