"""The subcommands, one module per family.  Each module has ``register(sub, common)`` adding its
parsers (with ``func`` set); a command returns an exit code and raises PybuildError for
failures, which cli.py alone turns into messages and exit codes."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

#: Command modules, in the order they register their commands.
MODULES = ("build", "syntax", "archive", "images", "containers", "layerdirs", "analysis", "analyze", "storage",
           "registry", "info")

#: Which module registers each command, so that running one imports only its module
#: (start-up time counts: a warm build should take a fraction of a second).
#: tests/test_cli.py checks this table against what the modules register.
COMMANDS = {
    "build": "build", "parse": "build", "check-syntax": "syntax",
    "import": "archive", "load": "archive", "save": "archive",
    "images": "images", "history": "images", "inspect": "images", "rmi": "images", "tag": "images",
    "run": "containers", "commit": "containers", "ps": "containers", "rm": "containers",
    "export-layers": "layerdirs", "import-layers": "layerdirs", "mount": "layerdirs", "umount": "layerdirs",
    "layers": "analysis", "find": "analysis", "diff": "analysis",
    "analyze": "analyze", "report": "analyze", "cp": "analyze",
    "df": "storage", "prune": "storage", "check": "storage",
    "pull": "registry", "push": "registry", "login": "registry",
    "info": "info",
}

#: The families `pybuild --help` lists the commands in, in order (as docker's help groups its
#: commands); every command of COMMANDS is in exactly one (tests/test_cli.py checks).
FAMILIES = (
    ("Build", ("build", "parse", "check-syntax")),
    ("Images", ("images", "history", "inspect", "tag", "rmi", "import", "load", "save")),
    ("Layers and analysis", ("layers", "find", "diff", "analyze", "report", "cp", "export-layers",
                             "import-layers", "mount", "umount")),
    ("Containers", ("run", "commit", "ps", "rm")),
    ("Registry", ("pull", "push", "login")),
    ("Store", ("df", "prune", "check")),
    ("System", ("info",)),
)


def store_of(args: argparse.Namespace):
    """The store the command names (``--root``, else ``default_root()``), opened.  Started by
    an ordinary user, pybuild first moves into a user namespace of its own (layer/userns.py):
    every command that opens the store runs there, since its layers hold files of ids only
    the namespace may own or read."""
    # start-up: commands that need no store never import it
    from builder.store.store import Store, default_root
    root = Path(args.root) if args.root else default_root()     # chosen with the user's own uid
    if os.geteuid() != 0:
        # start-up: only an ordinary user's commands enter a user namespace
        from builder.layer import userns
        userns.enter()
    return Store(root)
