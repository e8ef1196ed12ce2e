"""The pybuild command line.  The only place that prints errors and chooses exit codes.

Exit codes: 0 success; 1 the operation failed (a RUN exited non-zero, a source or image is
missing, an archive does not verify, …); 2 bad usage or a Buildfile error; 70 internal error
(a bug: please report it); 130 interrupted (SIGINT); 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from builder import __version__
from builder.errors import PybuildError

EXIT_INTERNAL = 70


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that cleanup (finally blocks) runs."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    root = None
    while argv and (argv[0] == "--root" or argv[0].startswith("--root=")):   # a global option
        root = argv.pop(0).partition("=")[2] or (argv.pop(0) if argv else "")
    argv = ["--explain=text" if a == "--explain" else a for a in argv]   # optional value
    from builder.commands import COMMANDS
    commands = set(COMMANDS)
    if argv and argv[0] not in commands and argv[0] not in ("-h", "--help", "--version"):
        if not argv[0].startswith("-") and not os.path.isdir(argv[0]):
            import difflib
            close = difflib.get_close_matches(argv[0], sorted(commands), n=1)
            hint = f" (did you mean `pybuild {close[0]}`?)" if close else ""
            print(f"pybuild: error: unknown command {argv[0]}{hint}; see `pybuild --help`", file=sys.stderr)
            return 2
        argv.insert(0, "build")                   # `pybuild -f Buildfile -t x .` / `pybuild .`
    parser = _parser(only=COMMANDS.get(argv[0]) if argv else None)
    args = parser.parse_args(argv)
    args.root = args.root or root
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.func(args) or 0
    except PybuildError as e:
        print(f"pybuild: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("pybuild: interrupted; the build was stopped and cleaned up", file=sys.stderr)
        return 130
    except Terminated:
        print("pybuild: terminated; the build was stopped and cleaned up", file=sys.stderr)
        return 143
    except BrokenPipeError:
        return 1
    except Exception as e:  # noqa: BLE001 - the one place that reports bugs
        import traceback
        traceback.print_exc()
        print(f"pybuild: internal error: {e!r} (this is a bug in pybuild)", file=sys.stderr)
        return EXIT_INTERNAL


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that command module's commands are registered
    (the one being run), so the others are never imported."""
    import importlib

    from builder.commands import MODULES
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", help="image store directory (default $PYBUILD_ROOT or /var/lib/pybuild)")
    p = argparse.ArgumentParser(
        prog="pybuild",
        description="Build Dockerfile-style images without a daemon, and see how every layer is made.",
        epilog="`pybuild -f Buildfile -t NAME [CONTEXT]` is short for `pybuild build …`.")
    p.add_argument("--version", action="version", version=f"pybuild {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name in (only,) if only else MODULES:
        importlib.import_module(f"builder.commands.{name}").register(sub, common)
    return p
