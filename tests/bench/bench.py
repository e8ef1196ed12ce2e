#!/usr/bin/env python3
"""pybuild against BuildKit and buildah on fixed cases: a benchmark, not a test.

    sudo python3 tests/bench/bench.py [--runs N] [--repeat R] [--cases small,big,…,rss]
                                      [--no-others] [--json out.json] [--markdown]

For each case, the same Dockerfile and context are built by every available builder, interleaved
(pybuild, buildkit, buildah; buildkit, buildah, pybuild; …: each round starts one tool later).
Three phases, each ``--runs`` timed rounds:

- cold: ``--no-cache`` builds, after one untimed warm-up round (page cache, .pyc files); the
  ``big`` case's RUN is also timed alone in a plain chroot (the floor) in the same rounds;
- warm: builds with every step cached, after one untimed build fills each cache;
- edit (cases with context files): before each round one line is appended to one context
  file, then every tool rebuilds without ``--no-cache`` — the inner loop: the step reading
  that file and every step after it miss, the steps before it hit.

An untimed sync(2) precedes every timed build, so no tool pays for the write-back of the build
before it.  ``--repeat R`` runs all of it R times (2 by default) to show how stable the ratios
are.  The tables show min / median / max per tool and phase, and pybuild's median over
BuildKit's (or the floor's), per repeat, against issue 14's targets.  The ``rss`` case is
pybuild's peak RSS while capturing a 1 GiB layer (target < 100 MB).  A builder that is not
installed, or whose daemon does not start, shows "n/a"; a build that fails is listed under the
tables and makes the exit status 1.  Everything lives in one temp dir that is removed at the
end (after unmounting and stopping what the benchmark started); /var/lib/docker and the system
buildah storage are never used.  Needs root.  docs/benchmark.md has the cases and recorded
numbers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from builders import REPO, Buildah, Builder, BuildFailed, BuildKit, ChrootFloor, ProcessRunner, Pybuild, Unavailable
from cases import CASES, RSS_CASE, Case, append_line
from mounts import remove_tree
from report import Failure, Results, Row, RssResult, render

MAKE_BASE = REPO / "tests" / "conformance" / "make-base.sh"


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5,
                    help="timed builds per tool and phase (cold, warm, edit) (5)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="run the whole measurement this many times, to show how stable the "
                         "ratios are (2)")
    ap.add_argument("--cases", default=",".join([*CASES, "rss"]),
                    help=f"comma-separated, from {', '.join([*CASES, 'rss'])} (all)")
    ap.add_argument("--no-others", action="store_true", help="pybuild only: no dockerd, no buildah")
    ap.add_argument("--json", metavar="OUT", help="write every sample and the machine to OUT")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--no-sync", action="store_true",
                    help="do not sync(2) (untimed) before each timed build")
    ap.add_argument("--report", metavar="IN",
                    help="build nothing: print the table of a saved --json file (with --markdown)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per build (900)")
    ap.add_argument("--buildah-driver", default="overlay", choices=["overlay", "vfs"],
                    help="buildah storage driver (overlay)")
    ap.add_argument("--pybuild-from", choices=("venv", "source"), default="venv",
                    help="time an installed pybuild (pip install into a venv, default) or "
                         "`python3 -m builder` from the checkout")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="run pybuild with the environment's PYTHONDONTWRITEBYTECODE as it is "
                         "(default: .pyc files are kept in the temp dir, as if installed)")
    ap.add_argument("--workdir", default=None,
                    help="parent of the temp dir (default $TMPDIR or /tmp; needs ~10 GB)")
    args = ap.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in args.cases if c not in CASES and c != "rss"]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join([*CASES, 'rss'])}")
    if args.runs < 1 or args.repeat < 1:
        ap.error("--runs and --repeat must be ≥ 1")
    return args


def machine() -> dict[str, str]:
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def settle(enabled: bool) -> None:
    """Untimed: write back every dirty page, so no build pays for the previous tool's writes."""
    if enabled:
        os.sync()


class Recorder:
    """Where the measurement writes what went wrong: failed builds, and sanity checks on the
    image IDs the tools print (a warm build must give the cached image; an edit build must give
    a new one, or the tool did not see the edit)."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self.checks: list[str] = []

    def failed(self, failure: Failure) -> None:
        self.failures.append(failure)
        when = f"run {failure.run}" if failure.run is not None else "untimed build"
        log(f"[{failure.repeat}] {failure.case} {failure.phase} {when} {failure.tool}: "
            f"FAILED\n{failure.message}")

    def check(self, ok: bool, text: str) -> None:
        if not ok:
            self.checks.append(text)
            log(f"check: {text}")


def build_once(b: Builder, ctx: Path, *, case: str, no_cache: bool, timeout: float,
               sync: bool) -> tuple[float, str]:
    """Prepare (untimed), sync (untimed), build: seconds and the image ID printed."""
    b.prepare(ctx)
    settle(sync)
    built = b.build(ctx, tag=f"bench-{case}:latest", no_cache=no_cache, timeout=timeout)
    return built.seconds, built.image


def time_builds(builders: list[Builder], ctx: Path, *, case: Case, phase: str, repeat: int,
                args, rec: Recorder, images: dict[str, str]) -> dict[str, list[float | None]]:
    """``args.runs`` rounds, each building once with every builder in turn; None marks a failure.

    Round r starts with builder r mod n (pybuild, buildkit, buildah; buildkit, buildah,
    pybuild; …), so no tool always runs right after the same other one.  In the edit phase
    each round first appends a line to the case's edit file, so that every tool misses.
    ``images`` holds each tool's last image ID (from the untimed build before the phase) and
    is updated as the phase goes."""
    samples: dict[str, list[float | None]] = {b.name: [] for b in builders}
    runs = args.runs
    for r in range(runs):
        if phase == "edit":
            append_line(ctx, case, f"{repeat}.{r + 1}")
        k = r % len(builders)
        for b in builders[k:] + builders[:k]:
            try:
                seconds, image = build_once(b, ctx, case=case.name, no_cache=phase == "cold",
                                            timeout=args.timeout, sync=not args.no_sync)
                log(f"[{repeat}] {case.name} {phase} {r + 1}/{runs} {b.name}: {seconds:.2f}s"
                    + (f" {image[:19]}" if image else ""))
                rec.check(bool(image) or not b.makes_image,
                          f"repeat {repeat}, {case.name} {phase} run {r + 1}: {b.name} printed "
                          "no image ID")
            except BuildFailed as e:
                seconds, image = None, ""
                rec.failed(Failure(repeat, case.name, phase, b.name, r + 1, str(e)))
            samples[b.name].append(seconds)
            before = images.get(b.name, "")
            if image and before and phase == "warm":
                rec.check(image == before,
                          f"repeat {repeat}, {case.name} warm run {r + 1}: {b.name} made image "
                          f"{image[:24]}, its cached build {before[:24]} (not every step cached?)")
            if image and before and phase == "edit":
                rec.check(image != before,
                          f"repeat {repeat}, {case.name} edit run {r + 1}: {b.name} made the "
                          f"same image as before the edit ({image[:24]}): it missed the edit")
            if image:
                images[b.name] = image
    return samples


def untimed(builders: list[Builder], ctx: Path, *, case: str, phase: str, repeat: int, args,
            rec: Recorder) -> dict[str, str]:
    """One untimed build each: before the cold runs it warms the page cache and pybuild's
    .pyc files; before the warm runs it fills every builder's cache.  Returns the image IDs."""
    images = {}
    for b in builders:
        try:
            _, images[b.name] = build_once(b, ctx, case=case, no_cache=phase == "cold",
                                           timeout=args.timeout, sync=False)
        except BuildFailed as e:
            rec.failed(Failure(repeat, case, phase, b.name, None, str(e)))
    return images


def run_case(name: str, builders: list[Builder], work: Path, base_tar: Path, args, *,
             repeat: int, rec: Recorder) -> list[Row]:
    case = CASES[name]
    ctx = work / f"ctx-{name}"
    ctx.mkdir()
    case.write(ctx)
    log(f"[{repeat}] case {name}: {case.title}")
    cold_builders = list(builders)
    floor = None
    if case.floor is not None:
        floor = ChrootFloor(ProcessRunner(), workdir=work, base_tar=base_tar, floor=case.floor)
        cold_builders.append(floor)
    try:
        untimed(cold_builders, ctx, case=name, phase="cold", repeat=repeat, args=args, rec=rec)
        cold = time_builds(cold_builders, ctx, case=case, phase="cold", repeat=repeat, args=args,
                           rec=rec, images={})
    finally:
        if floor is not None:
            floor.close()
    images = untimed(builders, ctx, case=name, phase="warm", repeat=repeat, args=args, rec=rec)
    warm = time_builds(builders, ctx, case=case, phase="warm", repeat=repeat, args=args, rec=rec,
                       images=dict(images))
    edit: dict[str, list[float | None]] = {b.name: [] for b in builders}
    if case.edit is not None:
        edit = time_builds(builders, ctx, case=case, phase="edit", repeat=repeat, args=args,
                           rec=rec, images=dict(images))
    for b in builders:
        try:
            b.forget([f"bench-{name}:latest"])
        except Exception as e:  # cleanup between cases is best effort
            log(f"{name}: {b.name} cleanup: {e}")
    remove_tree(ctx)
    rows = [Row(repeat, name, b.name, cold[b.name], warm[b.name], edit[b.name]) for b in builders]
    if floor is not None:
        rows.append(Row(repeat, name, floor.name, cold[floor.name]))
    return rows


def measure_rss(pybuild: Pybuild, work: Path, timeout: float, *, repeat: int) -> RssResult:
    """Peak RSS of pybuild's Python process while it builds (and captures) a 1 GiB layer.

    ``vm_hwm`` is the Python process's own high-water mark (/proc/PID/status VmHWM, polled
    every 20 ms; it only grows, so the last reading holds every earlier peak).  ``tree_max``
    is wait4's ru_maxrss: the largest single process among it and its reaped descendants
    (the RUN's sh and head, the sandbox's forked helpers)."""
    ctx = work / "ctx-rss"
    ctx.mkdir()
    RSS_CASE.write(ctx)
    cmd, env = pybuild.build_command(ctx, tag="bench-rss:latest", no_cache=True)
    log(f"case rss: {RSS_CASE.title}")
    err_path = work / "rss.stderr"
    os.sync()
    start = time.perf_counter()
    with open(err_path, "wb") as err_file:  # a file, not a pipe: nothing can block the build
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err_file, start_new_session=True)
    pid, hwm_kb, status, usage = 0, 0, None, None
    deadline = start + timeout
    try:
        while True:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            hwm_kb = max(hwm_kb, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                pass
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() > deadline:
                raise BuildFailed(f"rss build timed out after {timeout:.0f}s")
            time.sleep(0.02)
    finally:
        if status is None or usage is None or pid != proc.pid:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(proc.pid, 0)
        proc.returncode = 0  # reaped by wait4 above; keep Popen from waiting again
    seconds = time.perf_counter() - start
    err = err_path.read_text(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    try:
        pybuild.forget(["bench-rss:latest"])
    finally:
        remove_tree(ctx)
    if code != 0:
        raise BuildFailed(f"rss build exited {code}\n{err[-2000:]}")
    return RssResult(repeat, vm_hwm_kb=hwm_kb, tree_max_kb=usage.ru_maxrss, seconds=seconds)


def save(path: Path, res: Results) -> None:
    path.write_text(json.dumps({
        "machine": res.info, "versions": res.versions, "unavailable": res.unavailable,
        "runs": res.runs, "repeats": res.repeats,
        "cases": {n: CASES[n].title for n in res.cases if n in CASES},
        "results": [r.as_dict() for r in res.rows],
        "rss": [r.as_dict() for r in res.rss],
        "failures": [vars(f) for f in res.failures],
        "checks": res.checks,
    }, indent=2) + "\n")


def load(path: Path) -> Results:
    """The results of a ``--json`` file written by an earlier run."""
    saved = json.loads(path.read_text())
    rss = [RssResult(**{k: v for k, v in r.items() if k not in ("target_mb", "met")})
           for r in saved["rss"]]
    return Results(saved["machine"], saved["versions"], saved["unavailable"], saved["runs"],
                   saved["repeats"], [Row.from_dict(r) for r in saved["results"]], rss,
                   [Failure(**f) for f in saved["failures"]], saved["checks"],
                   cases=list(saved["cases"]) + (["rss"] if saved["rss"] else []))


def make_base(work: Path, runner: ProcessRunner) -> Path:
    if not MAKE_BASE.is_file():
        raise SystemExit(f"bench: {MAKE_BASE} not found (the conformance cases' base maker)")
    out = work / "base.tar"
    runner.check(["sh", str(MAKE_BASE), str(out)], timeout=120, what="make-base.sh")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        print(render(load(Path(args.report)), markdown=args.markdown))
        return 0
    if os.geteuid() != 0:
        print("bench: needs root (pybuild, dockerd and buildah all mount and chroot)",
              file=sys.stderr)
        return 2

    def terminate(signum, frame):  # run the finally blocks below on SIGTERM too
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, terminate)

    runner = ProcessRunner()
    work = Path(tempfile.mkdtemp(prefix="pbbench.", dir=args.workdir))
    builders: list[Builder] = []
    unavailable: dict[str, str] = {}
    versions: dict[str, str] = {}
    rows: list[Row] = []
    rss: list[RssResult] = []
    rec = Recorder()
    info = machine()
    try:
        base_tar = make_base(work, runner)
        pyb = Pybuild(runner, workdir=work, base_tar=base_tar,
                      bytecode=not args.no_bytecode_cache,
                      from_source=args.pybuild_from == "source")
        builders.append(pyb)
        if not args.no_others:
            image_tar = pyb.save_base(work / "base-image.tar")
            for name, make in (("buildkit", lambda: BuildKit(runner, base_image_tar=image_tar)),
                               ("buildah", lambda: Buildah(runner, workdir=work,
                                                           base_image_tar=image_tar,
                                                           driver=args.buildah_driver))):
                try:
                    log(f"starting {name}")
                    builders.append(make())
                except Unavailable as e:
                    unavailable[name] = str(e)
                    log(f"{name}: n/a: {e}")
        versions = {b.name: b.version for b in builders}
        for repeat in range(1, args.repeat + 1):
            for name in args.cases:
                if name in CASES:
                    rows.extend(run_case(name, builders, work, base_tar, args, repeat=repeat,
                                         rec=rec))
            if "rss" in args.cases:
                try:
                    rss.append(measure_rss(pyb, work, args.timeout, repeat=repeat))
                except BuildFailed as e:
                    rss.append(RssResult(repeat, 0, 0, 0.0, error=str(e)))
                    rec.failed(Failure(repeat, "rss", "cold", "pybuild", 1, str(e)))
    except BuildFailed as e:
        log(f"setup failed: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        runner.kill_current()
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for b in reversed(builders):
            try:
                b.close()
            except Exception as e:
                log(f"closing {b.name}: {e}")
        remove_tree(work)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    res = Results(info, versions, unavailable, args.runs, args.repeat, rows, rss, rec.failures,
                  rec.checks, cases=list(args.cases))
    print(render(res, markdown=args.markdown))
    if args.json:
        save(Path(args.json), res)
    if rec.failures:
        log(f"{len(rec.failures)} build(s) failed: see the list under the tables")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
