"""What a build prints: docker-classic-like step lines, live RUN output, progress bars.

The build calls these methods and never prints by itself; errors are not printed here (cli.py
does that).  ``quiet`` keeps everything silent except the final image ID, which cli prints.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


class BuildLog:
    def __init__(self, out: TextIO | None = None, *, quiet: bool = False,
                 progress: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.quiet = quiet
        self.progress = (sys.stderr.isatty() and not quiet) if progress is None else progress
        self._prefix = ""
        self._partial = b""
        self._masked: list[bytes] = []       # secret values: never printed

    def mask(self, secret: bytes) -> None:
        """Print ``****`` wherever ``secret`` (or one of its lines) would appear in RUN output."""
        for value in (secret, *secret.splitlines()):
            value = value.strip()
            if len(value) >= 3 and value not in self._masked:
                self._masked.append(value)
        self._masked.sort(key=len, reverse=True)

    def _print(self, text: str) -> None:
        if not self.quiet:
            self.out.write(text + "\n")
            self.out.flush()

    def step(self, number: int, total: int, original: str) -> None:
        self._prefix = f"[{number}/{total}] "
        self._print(f"Step {number}/{total} : {original}")

    def note(self, text: str) -> None:
        """An indented ``--->`` line under the current step."""
        self._print(f" ---> {text}")

    def explain(self, text: str) -> None:
        """A --explain block under the current step."""
        self._print(text)

    def warn(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"[WARNING]: {text}\n")

    def output(self, chunk: bytes) -> None:
        """Live output of a RUN: complete lines are printed at once, prefixed by the step."""
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            self._print(self._prefix + self._shown(line))

    def end_output(self) -> None:
        if self._partial:
            self._print(self._prefix + self._shown(self._partial))
            self._partial = b""

    def _shown(self, line: bytes) -> str:
        for secret in self._masked:
            line = line.replace(secret, b"****")
        return line.decode("utf-8", errors="replace")

    @contextmanager
    def bar(self, desc: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """A tqdm bar on stderr when it is a terminal; yields a ``done(total_so_far)`` callback."""
        if not self.progress:
            yield lambda n: None
            return
        from tqdm import tqdm  # start-up: only with a terminal to draw on
        tqdm.monitor_interval = 0        # no monitor thread: RUN forks
        with tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False,
                  file=sys.stderr, mininterval=0.2) as bar:
            def done(so_far: int) -> None:
                bar.n = so_far
                if so_far - bar.last_print_n >= 1 << 20:
                    bar.refresh()
            yield done
