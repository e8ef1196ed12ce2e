"""pybuild: a daemonless, Dockerfile-style image builder that shows how every layer is made."""

__version__ = "0.1.0"
