"""`pybuild check-syntax Buildfile`: parse without building and print the steps.

Prints ``Step N/M : <instruction>`` for every instruction (the numbering a build would use,
ARGs before the first FROM included), then the parser's warnings; a bad Buildfile raises its
BuildfileError, which cli.py prints with its caret and exit code.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_check_syntax(args: argparse.Namespace) -> int:
    # start-up: only this command needs these
    from builder.buildfile import instructions as ins
    from builder.buildfile.parse import parse_file
    parsed = parse_file(Path(args.buildfile))
    total = len(parsed.instructions)
    for number, instruction in enumerate(parsed.instructions, start=1):
        print(f"Step {number}/{total} : {instruction.original}")
    for warning in parsed.warnings:
        print(f"warning: {warning}")
    stages = sum(isinstance(i, ins.From) for i in parsed.instructions)
    print(f"{args.buildfile}: syntax OK ({total} instructions, "
          f"{stages} stage{'s' if stages != 1 else ''})")
    return 0


def register(sub, common) -> None:
    c = sub.add_parser("check-syntax", parents=[common],
                       help="parse a Buildfile and print its steps, without building")
    c.add_argument("buildfile", help="the Buildfile to check")
    c.set_defaults(func=cmd_check_syntax)
