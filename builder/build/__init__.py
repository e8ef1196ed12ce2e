"""One build: stage planning, pure handlers that describe each step, the executor that carries
descriptions out, --explain and the build log.  Imports every package below commands."""
