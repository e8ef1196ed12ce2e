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

USAGE = "pybuild [--root DIR] COMMAND [ARG...]"
DESCRIPTION = "Build Dockerfile-style images without a daemon, and see how every layer is made."
ROOT_HELP = "image store (default $PYBUILD_ROOT; /var/lib/pybuild as root, ~/.local/share/pybuild as a user)"
SHORT_FORM = "`pybuild -f Buildfile -t NAME [CONTEXT]` is short for `pybuild build …`."


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that cleanup (finally blocks) runs."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    root = None
    while argv and (argv[0] == "--root" or argv[0].startswith("--root=")):   # a global option
        root = argv.pop(0).partition("=")[2] or (argv.pop(0) if argv else "")
    argv = ["--explain=text" if a == "--explain" else a for a in argv]   # optional value
    if not argv:
        print(f"usage: {USAGE}\npybuild: error: a command is required; see `pybuild --help`", file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(_help(), end="")
        return 0
    # start-up: imported only when needed
    from builder.commands import COMMANDS
    commands = set(COMMANDS)
    if argv[0] not in commands and argv[0] != "--version":
        if not argv[0].startswith("-") and not os.path.isdir(argv[0]):
            import difflib
            close = difflib.get_close_matches(argv[0], sorted(commands), n=1)
            hint = f" (did you mean `pybuild {close[0]}`?)" if close else ""
            print(f"pybuild: error: unknown command {argv[0]}{hint}; see `pybuild --help`", file=sys.stderr)
            return 2
        argv.insert(0, "build")                   # `pybuild -f Buildfile -t x .` / `pybuild .`
    parser, _ = _parser(only=COMMANDS.get(argv[0]))
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
    except Exception as e:
        import traceback
        traceback.print_exc()
        print(f"pybuild: internal error: {e!r} (this is a bug in pybuild)", file=sys.stderr)
        return EXIT_INTERNAL


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """The argument parser and each registered command's one-line help; with ``only``, just
    that command module's commands are registered (the one being run), so the others are
    never imported."""
    import importlib

    # start-up: imported only when needed
    from builder.commands import MODULES
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", help=ROOT_HELP)
    p = argparse.ArgumentParser(prog="pybuild", usage=USAGE)        # its help is _help(), not argparse's
    p.add_argument("--version", action="version", version=f"pybuild {__version__}")
    # prog: a command's own usage reads `pybuild build …`, not USAGE followed by the command
    sub = _HelpRecorder(p.add_subparsers(dest="command", required=True, metavar="COMMAND", prog="pybuild"))
    for name in (only,) if only else MODULES:
        importlib.import_module(f"builder.commands.{name}").register(sub, common)
    return p, sub.help


class _HelpRecorder:
    """Passed to the command modules' ``register`` in place of argparse's subparsers action:
    adds each parser there, keeping its ``help`` for `pybuild --help`."""

    def __init__(self, subparsers) -> None:
        self._subparsers = subparsers
        self.help: dict[str, str] = {}

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        self.help[name] = kwargs.get("help", "")
        return self._subparsers.add_parser(name, **kwargs)


def _help() -> str:
    """`pybuild --help`: a short usage line, then the commands by family (as docker's help
    groups them), one line each with its help, then the global options.  Every command
    module is imported here, and only here; `pybuild COMMAND --help` is argparse's own."""
    # start-up: imported only when needed
    from builder.commands import FAMILIES
    _, helps = _parser()
    options = [("--root DIR", ROOT_HELP), ("--version", "print pybuild's version and exit"),
               ("-h, --help", "show this help and exit")]
    width = max(len(name) for name in [*helps, *(o for o, _ in options)]) + 3
    out = [f"usage: {USAGE}", "", DESCRIPTION]
    for family, names in FAMILIES:
        out += ["", f"{family}:"] + [f"  {name:<{width}}{helps[name]}" for name in names]
    out += ["", "Options:"] + [f"  {option:<{width}}{text}" for option, text in options]
    out += ["", "Run `pybuild COMMAND --help` for a command's options.", SHORT_FORM]
    return "\n".join(out) + "\n"
