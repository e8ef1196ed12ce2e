"""Putting heredoc bodies back after their line, the way BuildKit hands a RUN with heredocs to
the shell (and the text pybuild records as that step's created_by).

The parser keeps ``ShellForm.text`` as the line was written (``<<EOF cat``) and each body in
``Heredoc.content`` (tabs already stripped for ``<<-``); :func:`script` joins them again:
the line, a newline, then every body followed by its terminator line, in order.
[docker: moby/buildkit frontend/dockerfile/dockerfile2llb/convert.go dispatchRun]
"""

from __future__ import annotations

from builder.buildfile.instructions import Heredoc


def script(text: str, heredocs: tuple[Heredoc, ...]) -> str:
    """``text`` followed by the heredoc bodies and terminators (``text`` alone if none)."""
    if not heredocs:
        return text
    return text + "\n" + "".join(f"{h.content}{h.name}\n" for h in heredocs)
