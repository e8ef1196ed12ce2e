"""Builder flags (``--chown=1:1``, ``--link``): which instruction accepts which, and checks.

Docker treats every leading ``--word`` after the keyword as a flag, for any instruction, and
then rejects the ones the instruction does not know.  Values must be attached with ``=``.
Values are kept raw (quotes and ``$VAR`` untouched); the planner expands them.
[docker: moby/buildkit frontend/dockerfile/instructions/bflag.go]
"""

from __future__ import annotations

import difflib
import re
from enum import Enum

from builder.buildfile import runmount
from builder.buildfile.instructions import Flag, Position
from builder.buildfile.lines import LogicalLine
from builder.errors import MountError


class Kind(Enum):
    STRING = "string"       # --name=value, once
    BOOL = "bool"           # --name or --name=true|false, once
    REPEATABLE = "strings"  # --name=value, any number of times
    DURATION = "duration"   # --name=30s (Go duration syntax), once
    COUNT = "count"         # --name=3, once


FLAGS: dict[str, dict[str, Kind]] = {
    "FROM": {"platform": Kind.STRING},
    "RUN": {"mount": Kind.REPEATABLE, "network": Kind.STRING, "security": Kind.STRING},
    "ADD": {"chown": Kind.STRING, "chmod": Kind.STRING, "checksum": Kind.STRING,
            "link": Kind.BOOL, "keep-git-dir": Kind.BOOL, "exclude": Kind.REPEATABLE},
    "COPY": {"from": Kind.STRING, "chown": Kind.STRING, "chmod": Kind.STRING,
             "link": Kind.BOOL, "parents": Kind.BOOL, "exclude": Kind.REPEATABLE},
    "HEALTHCHECK": {"interval": Kind.DURATION, "timeout": Kind.DURATION,
                    "start-period": Kind.DURATION, "start-interval": Kind.DURATION,
                    "retries": Kind.COUNT},
}
_UNIT = r"(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h)"
_DURATION = re.compile(rf"(?:{_UNIT})+\Z|0\Z")

_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*\Z")


def check_flags(logical: LogicalLine, keyword: str,
                raw: list[tuple[str, int]]) -> tuple[Flag, ...]:
    """Validate raw ``--name[=value]`` words (with their offsets) for ``keyword``."""
    known = FLAGS.get(keyword, {})
    flags: list[Flag] = []
    seen: set[str] = set()
    for word, offset in raw:
        name, equals, value = word[2:].partition("=")
        if not _NAME.match(name):
            raise logical.error(f"bad flag syntax: {word}", offset,
                                hint="flags look like --name=value or --name")
        kind = known.get(name)
        if kind is None:
            hint = (f"{keyword} accepts: " + ", ".join(f"--{n}" for n in known)) if known \
                else f"{keyword} takes no flags"
            close = difflib.get_close_matches(name, list(known), n=1)
            if close:
                hint = f"did you mean --{close[0]}? ({hint})"
            raise logical.error(f"unknown flag: --{name}", offset, hint=hint)
        if name in seen and kind is not Kind.REPEATABLE:
            raise logical.error(f"duplicate flag specified: --{name}", offset)
        seen.add(name)
        if kind is Kind.BOOL:
            if equals and value.lower() not in ("true", "false"):
                raise logical.error(f"expecting boolean value for flag --{name}, not: {value!r}",
                                    offset, hint=f"use --{name}, --{name}=true or --{name}=false")
            flags.append(Flag(name, value if equals else None, _pos(logical, offset)))
        else:
            if not equals:
                raise logical.error(f"missing a value on flag: --{name}", offset,
                                    hint=f"attach the value with '=': --{name}=<value>")
            if kind is Kind.DURATION and not _DURATION.match(value):
                raise logical.error(f"invalid duration for flag --{name}: {value!r}", offset,
                                    hint="durations look like 30s, 1m30s or 500ms")
            if kind is Kind.COUNT and not re.fullmatch(r"[0-9]+", value):
                raise logical.error(f"flag --{name} needs a whole number, not {value!r}", offset,
                                    hint=f"e.g. --{name}=3")
            if keyword == "RUN":
                _check_run_value(logical, name, value, offset)
            flags.append(Flag(name, value, _pos(logical, offset)))
    return tuple(flags)


def _pos(logical: LogicalLine, offset: int) -> Position:
    line, column, source_line = logical.locate(offset)
    return Position(logical.file, line, column, source_line, logical.end_line)


def _check_run_value(logical: LogicalLine, name: str, value: str, offset: int) -> None:
    """RUN's --mount, --network and --security, checked now when nothing in them is expanded
    later (a value with ``$`` is checked by the handler, with the build's variables).  The
    caret points at the flag; ``from`` never takes variables (BuildKit: define a stage)."""
    try:
        if name == "mount":
            if "$" not in value:
                runmount.parse_mount(value)
            elif re.search(r"(?:^|,)from=[^,]*\$", value, re.IGNORECASE):
                raise MountError("'from' doesn't support variable expansion, define alias stage instead")
        elif name == "network" and "$" not in value:
            runmount.parse_network(value)
        elif name == "security" and "$" not in value:
            if runmount.parse_security(value) == "insecure":
                raise MountError("--security=insecure is not allowed: pybuild runs every RUN confined "
                                 "(no privileged steps)", "remove the flag, or use --security=sandbox")
    except MountError as e:
        start = len(name) + 3                                   # past "--name="
        at = value.lower().find(e.at.lower()) if e.at else -1
        raise logical.error(f"--{name}: {e}", offset + (start + at if at >= 0 else 0), hint=e.hint) from None
