"""The benchmark's fixed cases: each writes a Dockerfile and its context into an empty directory.

Every case starts ``FROM pbtest/busybox:base`` (the conformance base, made by make-base.sh) and
is written the same way for every builder, so the three tools build byte-for-byte the same
input.  Context content is generated from a fixed seed: two runs of the benchmark see the same
files.  Data written *inside* a RUN comes from /dev/urandom where it is large (a 256 MiB file),
so a builder that compresses layers cannot win by compressing zeros.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BASE = "pbtest/busybox:base"
DOCKERFILE = "Dockerfile"


@dataclass(frozen=True)
class Case:
    """One fixed Dockerfile + context.  ``write(dir)`` fills an empty directory ``dir``."""
    name: str
    title: str
    write: Callable[[Path], None]


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


def _write_big_layer(ctx: Path) -> None:
    # 256 MiB of /dev/urandom + a 6,000,000-line file (~47 MB) + 5,000 small files, one layer.
    (ctx / DOCKERFILE).write_text(
        f"FROM {BASE}\n"
        "RUN head -c 268435456 /dev/urandom > /big"
        " && seq 1 6000000 > /lines"
        " && mkdir /many && cd /many"
        ' && i=0 && while [ $i -lt 5000 ]; do echo "file $i" > f$i; i=$((i+1)); done\n')


def _write_sixty_steps(ctx: Path) -> None:
    steps = "".join(f"RUN echo step {i} > /step-{i:02d}\n" for i in range(1, 61))
    (ctx / DOCKERFILE).write_text(f"FROM {BASE}\n{steps}")


def _write_big_context(ctx: Path) -> None:
    # 5,000 files in 50 directories; sizes 1..21 KiB (mean 11 KiB, ~55 MB in all); random bytes.
    rng = random.Random(20260101)
    data = ctx / "data"
    for d in range(50):
        sub = data / f"dir{d:02d}"
        sub.mkdir(parents=True)
        for f in range(100):
            size = rng.randint(1024, 21 * 1024)
            (sub / f"file{f:03d}.bin").write_bytes(rng.randbytes(size))
    (ctx / DOCKERFILE).write_text(f"FROM {BASE}\nADD data/ /data/\n")


def _write_gib_layer(ctx: Path) -> None:
    (ctx / DOCKERFILE).write_text(f"FROM {BASE}\nRUN head -c 1073741824 /dev/zero > /g\n")


CASES: dict[str, Case] = {c.name: c for c in [
    Case("small", "small app: 2 RUN, 1 ADD of 4 files, CMD", _write_small_app),
    Case("big", "big layer: one RUN writing 256 MiB urandom + 6M-line file + 5,000 files",
         _write_big_layer),
    Case("steps", "60 RUN steps, each writing one file", _write_sixty_steps),
    Case("context", "ADD of a 5,000-file, ~55 MB context directory", _write_big_context),
]}

# Not timed against the others: pybuild's peak RSS while it captures a 1 GiB layer.
RSS_CASE = Case("rss", "1 GiB layer (RUN head -c 1073741824 /dev/zero > /g)", _write_gib_layer)
