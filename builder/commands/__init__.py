"""The subcommands, one module per family.  Each module has ``register(sub, common)`` adding its
parsers (with ``func`` set); a command returns an exit code and raises PybuildError for
failures, which cli.py alone turns into messages and exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

#: Command modules, in the order their commands appear in --help.
MODULES = ("build", "archive", "images", "containers", "layerdirs", "analysis", "storage")


def store_of(args: argparse.Namespace):
    from builder.store import Store, default_root
    return Store(Path(args.root) if args.root else default_root())
