#!/usr/bin/env python3
"""What building rootless and with the copy snapshotter costs, against root over overlay.

    sudo python3 tests/bench/snapshotters.py [--runs N] [--cases small,steps,context,big] [--json OUT]

The bench's own cases (cases.py) are built by pybuild four ways: as root over overlay (the
reference), as root with ``--snapshotter copy``, as an ordinary user over overlay in its user
namespace, and as that user with the copy snapshotter.  Per case: one untimed warm-up round,
``--runs`` timed cold rounds (``--no-cache``), one untimed cached round, ``--runs`` timed warm
rounds; each round builds once per way, interleaved (each round starts one way later), with
an untimed sync(2) before every timed build.  The table gives the median wall-clock seconds,
the min–max spread, and each way's median over the reference's.

The ordinary user is tests/rootlessfixtures.py's (``pybuild-ci``: made if missing, with
subordinate ids, and removed at the end if this run made it); each way has a store of its own
in one temp dir, removed at the end.  Needs root.  A benchmark, not a test (pytest does not
collect tests/bench); docs/rootless.md has the numbers from this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from cases import CASES  # noqa: E402
from rootlessfixtures import REPO, RootlessUser, make_user, remove_user  # noqa: E402

WAYS = ("root/overlay", "root/copy", "rootless/overlay", "rootless/copy")
MAKE_BASE = REPO / "tests" / "conformance" / "make-base.sh"


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Way:
    """One way of building: who runs pybuild, with which snapshotter, on which store."""

    def __init__(self, name: str, store: Path, user: RootlessUser, *, rootless: bool) -> None:
        self.name = name
        self.store = store
        self.user = user if rootless else None
        self.as_root = user                     # for its interpreter and environment
        self.snapshotter = name.split("/")[1]

    def run(self, *args: str) -> float:
        """Run pybuild; the wall-clock seconds it took.  A failure stops the benchmark.  Root
        runs the interpreter the user runs (so that only the way differs), with its environment."""
        user = self.user or self.as_root
        kw = {"user": user.uid, "group": user.gid, "extra_groups": []} if self.user else {}
        argv = [*user.python, "-m", "builder", "--root", str(self.store), *args]
        start = time.perf_counter()
        proc = subprocess.run(argv, env=user.env(), capture_output=True, text=True, cwd=self.store.parent, **kw)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{self.name}: pybuild {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return took

    def build(self, ctx: Path, *, cold: bool) -> float:
        return self.run("build", "-q", "--snapshotter", self.snapshotter, *(["--no-cache"] if cold else []),
                        "-t", "bench", "-f", str(ctx / "Dockerfile"), str(ctx))


def rounds(ways: list[Way], ctx: Path, *, runs: int, cold: bool, sync: bool) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {w.name: [] for w in ways}
    for r in range(runs):
        order = ways[r % len(ways):] + ways[:r % len(ways)]
        for way in order:
            if sync:
                os.sync()
            times[way.name].append(way.build(ctx, cold=cold))
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed builds per way, cold and warm (5)")
    ap.add_argument("--cases", default="small,steps,context,big", help="from " + ", ".join(CASES))
    ap.add_argument("--json", metavar="OUT", help="write every sample to OUT")
    ap.add_argument("--no-sync", action="store_true", help="no sync(2) before each timed build")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("needs root (it makes the ordinary user and builds as root too)")
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}")
    work = Path(tempfile.mkdtemp(prefix="pbsnap.", dir="/tmp"))
    user = make_user()
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    try:
        os.chmod(work, 0o755)
        base = work / "base.tar"
        subprocess.run(["sh", str(MAKE_BASE), str(base)], check=True)
        os.chmod(base, 0o644)
        ways = [Way(name, (user.home if name.startswith("rootless") else work) / f"store-{name.replace('/', '-')}",
                    user, rootless=name.startswith("rootless")) for name in WAYS]
        for way in ways:
            way.run("import", str(base), "pbtest/busybox:base")
        for name in names:
            ctx = user.home / f"ctx-{name}"        # every way reads it; the user's home is 0700
            ctx.mkdir()
            CASES[name].write(ctx)
            user.own(ctx)
            log(f"{name}: warm-up")
            rounds(ways, ctx, runs=1, cold=True, sync=False)
            log(f"{name}: {args.runs} cold rounds")
            cold = rounds(ways, ctx, runs=args.runs, cold=True, sync=not args.no_sync)
            rounds(ways, ctx, runs=1, cold=False, sync=False)
            log(f"{name}: {args.runs} warm rounds")
            warm = rounds(ways, ctx, runs=args.runs, cold=False, sync=not args.no_sync)
            results[name] = {"cold": cold, "warm": warm}
            shutil.rmtree(ctx, ignore_errors=True)
    finally:
        remove_user(user)
        shutil.rmtree(work, ignore_errors=True)
    print(report(results, args.runs))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "runs": args.runs, "results": results},
                                              indent=1))
    return 0


def machine() -> str:
    cpus = os.cpu_count()
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpus} CPUs; Linux {platform.release()}; " \
           f"Python {platform.python_version()}"


def report(results: dict[str, dict[str, dict[str, list[float]]]], runs: int) -> str:
    lines = [f"- {machine()}; median of {runs} runs (min–max), wall-clock s", "",
             "| case | way | cold s | cold / root overlay | warm s | warm / root overlay |",
             "|---|---|---:|---:|---:|---:|"]
    for name, phases in results.items():
        ref = {phase: statistics.median(phases[phase]["root/overlay"]) for phase in ("cold", "warm")}
        for way in WAYS:
            cells = []
            for phase in ("cold", "warm"):
                samples = phases[phase][way]
                med = statistics.median(samples)
                cells += [f"{med:.2f} ({min(samples):.2f}–{max(samples):.2f})", f"{med / ref[phase]:.2f}"]
            lines.append(f"| {name} | {way} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
