"""Heredocs after the parser: what a RUN with heredocs runs, which source word of ADD/COPY is
a heredoc.  Pure.  (A body is expanded by buildfile/expand.py's ``expand_heredoc``.)

A RUN with a lone heredoc (``RUN <<EOF`` … ``EOF``) runs its body: with the SHELL, or, when it
starts with ``#!``, as a script file of its own.  A RUN whose line has other words gets the
line, the bodies and their terminators as one shell script, and the shell does the heredoc
processing.  [docker: moby/buildkit frontend/dockerfile/dockerfile2llb/convert.go dispatchRun]
"""

from __future__ import annotations

import re

from builder.buildfile.instructions import Heredoc

SCRIPT_DIR = "/.pybuild-heredoc-"      # + delimiter: a shebang heredoc's file while it runs
_LONE_HEREDOC = re.compile(r"\d*<<-?\s*(\S+)\Z")


def run_argv(text: str, heredocs: tuple[Heredoc, ...],
             shell: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, bytes] | None]:
    """(argv, script file) for a shell-form RUN ``text`` with ``heredocs``: the script file is
    (absolute path, body) for a ``#!`` body that runs as a file, else None."""
    if len(heredocs) == 1 and _LONE_HEREDOC.match(text.strip()):
        body = heredocs[0].content
        if body.startswith("#!"):
            path = SCRIPT_DIR + re.sub(r"[^A-Za-z0-9_.-]", "_", heredocs[0].name)
            return (path,), (path, body.encode("utf-8", "surrogateescape"))
        return tuple(shell) + (body,), None
    script = text + "\n" + "".join(
        h.content + ("" if h.content.endswith("\n") or not h.content else "\n") + h.name + "\n"
        for h in heredocs)
    return tuple(shell) + (script,), None


def source_name(word: str) -> str | None:
    """``<<EOF`` / ``<<-EOF`` / ``<<"EOF"`` / ``<<E'O'F`` → ``EOF`` (quoting any part of the
    delimiter only turns expansion off); None for a word that is no heredoc."""
    if not word.startswith("<<"):
        return None
    return word[2:].lstrip("-").replace("'", "").replace('"', "")
