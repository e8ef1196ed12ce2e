"""The benchmark's fixed cases: each writes a Dockerfile and its context into an empty directory.

Every case starts ``FROM pbtest/busybox:base`` (the conformance base, made by make-base.sh) and
is written the same way for every builder, so the three tools build byte-for-byte the same
input.  Context content is generated from a fixed seed: two runs of the benchmark see the same
files.  Data written *inside* a RUN comes from /dev/urandom where it is large (a 256 MiB file),
so a builder that compresses layers cannot win by compressing zeros.

A case with an ``edit`` file takes part in the edit phase (the inner loop): before each timed
round one line is appended to that one context file, so every tool's next cached build misses
the step that reads it and every step after.  A case with a ``floor`` has its RUN timed alone
in a plain chroot too (bench.Floor), the least any builder can take for that step.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BASE = "pbtest/busybox:base"
DOCKERFILE = "Dockerfile"


@dataclass(frozen=True)
class Floor:
    """A RUN to time alone: ``command`` is its shell command exactly as in the Dockerfile,
    ``outputs`` what it writes (paths relative to /), hashed once after it ran."""
    command: str
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    """One fixed Dockerfile + context.  ``write(dir)`` fills an empty directory ``dir``.

    ``edit`` is the context file (relative path) the edit phase appends a line to; None: the
    case has no edit phase (no context to edit).  ``floor``: None unless the case is one RUN
    whose floor is measured."""
    name: str
    title: str
    write: Callable[[Path], None]
    edit: str | None = None
    floor: Floor | None = None


def append_line(ctx: Path, case: Case, label: str) -> None:
    """The edit phase's one edit: append ``edit <label>`` as a line to the case's edit file."""
    assert case.edit is not None, f"case {case.name} has no edit file"
    with open(ctx / case.edit, "a") as f:
        f.write(f"edit {label}\n")


def _write_small_app(ctx: Path) -> None:
    app = ctx / "app"
    (app / "lib").mkdir(parents=True)
    (app / "run.sh").write_text("#!/bin/sh\nexec httpd -f -p 8080 -h /app/www\n")
    (app / "run.sh").chmod(0o755)
    (app / "config.json").write_text('{"port": 8080, "name": "bench"}\n')
    (app / "lib" / "util.sh").write_text("greet() { echo \"hello $1\"; }\n")
    (app / "README").write_text("A small app for the benchmark.\n")
    (ctx / DOCKERFILE).write_text(
        f"FROM {BASE}\n"
        "RUN mkdir -p /app/www && echo built > /app/www/index.html\n"
        "ADD app/ /app/\n"
        "RUN chmod -R a+rX /app && ls -lR /app > /app/listing\n"
        'CMD ["/bin/sh", "/app/run.sh"]\n')


# 256 MiB of /dev/urandom + a 6,000,000-line file (~47 MB) + 5,000 small files, one layer.
BIG_RUN = Floor(
    command=("head -c 268435456 /dev/urandom > /big"
             " && seq 1 6000000 > /lines"
             " && mkdir /many && cd /many"
             ' && i=0 && while [ $i -lt 5000 ]; do echo "file $i" > f$i; i=$((i+1)); done'),
    outputs=("big", "lines", "many"))


def _write_big_layer(ctx: Path) -> None:
    (ctx / DOCKERFILE).write_text(f"FROM {BASE}\nRUN {BIG_RUN.command}\n")


def _write_sixty_steps(ctx: Path) -> None:
    steps = "".join(f"RUN echo step {i} > /step-{i:02d}\n" for i in range(1, 61))
    (ctx / DOCKERFILE).write_text(f"FROM {BASE}\n{steps}")


def _write_tree(top: Path, *, seed: int, dirs: int, max_kib: int) -> None:
    """``dirs`` directories of 100 files each, sizes 1..``max_kib`` KiB of random bytes from
    ``seed``; the first file, dir00/file000.bin, is exactly 2 KiB (the file the edit phase
    edits)."""
    rng = random.Random(seed)
    for d in range(dirs):
        sub = top / f"dir{d:02d}"
        sub.mkdir(parents=True)
        for f in range(100):
            size = 2048 if d == f == 0 else rng.randint(1024, max_kib * 1024)
            (sub / f"file{f:03d}.bin").write_bytes(rng.randbytes(size))


def _write_big_context(ctx: Path) -> None:
    # 5,000 files in 50 directories; sizes 1..21 KiB (mean 11 KiB, ~55 MB in all).
    _write_tree(ctx / "data", seed=20260101, dirs=50, max_kib=21)
    (ctx / DOCKERFILE).write_text(f"FROM {BASE}\nADD data/ /data/\n")


def _write_add_then_run(ctx: Path) -> None:
    # The same shape as `context` (5,000 files, ~55 MB), another seed, and a RUN that reads it.
    _write_tree(ctx / "src", seed=20260214, dirs=50, max_kib=21)
    (ctx / DOCKERFILE).write_text(
        f"FROM {BASE}\n"
        "ADD src/ /app/src\n"
        "RUN ls -R /app/src | wc -l > /count\n")


def _write_app_on_deps(ctx: Path) -> None:
    # A dependency step that stays cached, then the app's sources: 800 files in 8 directories,
    # 1..19 KiB (mean 10 KiB, ~8 MB), then a small RUN.
    _write_tree(ctx / "src", seed=20260315, dirs=8, max_kib=19)
    (ctx / DOCKERFILE).write_text(
        f"FROM {BASE}\n"
        "RUN echo deps > /deps\n"
        "COPY src/ /app/\n"
        "RUN echo built > /built\n")


def _write_gib_layer(ctx: Path) -> None:
    (ctx / DOCKERFILE).write_text(f"FROM {BASE}\nRUN head -c 1073741824 /dev/zero > /g\n")


EDITED = "dir00/file000.bin"  # in each tree: the 2 KiB file the edit phase appends to

CASES: dict[str, Case] = {c.name: c for c in [
    Case("small", "small app: 2 RUN, 1 ADD of 4 files, CMD", _write_small_app,
         edit="app/README"),
    Case("big", "big layer: one RUN writing 256 MiB urandom + 6M-line file + 5,000 files",
         _write_big_layer, floor=BIG_RUN),
    Case("steps", "60 RUN steps, each writing one file", _write_sixty_steps),
    Case("context", "ADD of a 5,000-file, ~55 MB context directory", _write_big_context,
         edit=f"data/{EDITED}"),
    Case("addrun", "ADD of a 5,000-file, ~55 MB tree, then a RUN listing it",
         _write_add_then_run, edit=f"src/{EDITED}"),
    Case("copyapp", "a cached RUN, COPY of an 800-file, ~8 MB tree, a small RUN",
         _write_app_on_deps, edit=f"src/{EDITED}"),
]}

# Not timed against the others: pybuild's peak RSS while it captures a 1 GiB layer.
RSS_CASE = Case("rss", "1 GiB layer (RUN head -c 1073741824 /dev/zero > /g)", _write_gib_layer)
