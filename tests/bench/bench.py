#!/usr/bin/env python3
"""pybuild against BuildKit and buildah on fixed cases: a benchmark, not a test.

    sudo python3 tests/bench/bench.py [--runs N] [--cases small,big,steps,context,rss]
                                      [--no-others] [--json out.json] [--markdown]

For each case, the same Dockerfile and context are built by every available builder, interleaved
(pybuild, buildkit, buildah, buildkit, buildah, pybuild, …: each round starts one tool later):
one untimed warm-up round, ``--runs`` cold builds (``--no-cache``) each, one untimed cached
build, then ``--runs`` warm builds (all cached).  An untimed sync(2) precedes every timed
build, so no tool pays for the write-back of the build before it.  The table shows the
median wall-clock seconds and pybuild / fastest other, against the targets of issue 4
(≤ 1.0 cold, ≤ 1.5 warm).  The ``rss`` case is pybuild's peak RSS while capturing a 1 GiB
layer (target < 100 MB).  A builder that is not installed, or whose daemon does not start,
shows "n/a".  Everything lives in one temp dir that is removed at the end (after unmounting
and stopping what the benchmark started); /var/lib/docker and the system buildah storage are
never used.  Needs root.  docs/benchmark.md has the cases and recorded numbers.
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

from builders import REPO, Buildah, Builder, BuildFailed, BuildKit, ProcessRunner, Pybuild, Unavailable, remove_tree
from cases import CASES, RSS_CASE
from report import Row, RssResult, markdown_report, text_report

MAKE_BASE = REPO / "tests" / "conformance" / "make-base.sh"
TOOLS = ("pybuild", "buildkit", "buildah")


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed builds per tool, cold and warm (5)")
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
    if args.runs < 1:
        ap.error("--runs must be ≥ 1")
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


def time_builds(builders: list[Builder], ctx: Path, *, case: str, runs: int, no_cache: bool,
                timeout: float, sync: bool) -> dict[str, list[float | None]]:
    """``runs`` rounds, each building once with every builder in turn; None marks a failure.

    Round r starts with builder r mod n (pybuild, buildkit, buildah; buildkit, buildah,
    pybuild; …), so no tool always runs right after the same other one."""
    samples: dict[str, list[float | None]] = {b.name: [] for b in builders}
    kind = "cold" if no_cache else "warm"
    for r in range(runs):
        k = r % len(builders)
        for b in builders[k:] + builders[:k]:
            settle(sync)
            try:
                seconds = b.build(ctx, tag=f"bench-{case}:latest", no_cache=no_cache,
                                  timeout=timeout)
                log(f"{case} {kind} {r + 1}/{runs} {b.name}: {seconds:.2f}s")
            except BuildFailed as e:
                seconds = None
                log(f"{case} {kind} {r + 1}/{runs} {b.name}: FAILED\n{e}")
            samples[b.name].append(seconds)
    return samples


def untimed(builders: list[Builder], ctx: Path, *, case: str, no_cache: bool,
            timeout: float) -> None:
    """One untimed build each: before the cold runs it warms the page cache and pybuild's
    .pyc files; before the warm runs (``no_cache=False``) it fills every builder's cache."""
    for b in builders:
        try:
            b.build(ctx, tag=f"bench-{case}:latest", no_cache=no_cache, timeout=timeout)
        except BuildFailed as e:
            log(f"{case} untimed build {b.name}: FAILED\n{e}")


def run_case(name: str, builders: list[Builder], work: Path, args) -> list[Row]:
    case = CASES[name]
    ctx = work / f"ctx-{name}"
    ctx.mkdir()
    case.write(ctx)
    log(f"case {name}: {case.title}")
    untimed(builders, ctx, case=name, no_cache=True, timeout=args.timeout)
    cold = time_builds(builders, ctx, case=name, runs=args.runs, no_cache=True,
                       timeout=args.timeout, sync=not args.no_sync)
    untimed(builders, ctx, case=name, no_cache=False, timeout=args.timeout)
    warm = time_builds(builders, ctx, case=name, runs=args.runs, no_cache=False,
                       timeout=args.timeout, sync=not args.no_sync)
    for b in builders:
        try:
            b.forget([f"bench-{name}:latest"])
        except Exception as e:  # cleanup between cases is best effort
            log(f"{name}: {b.name} cleanup: {e}")
    remove_tree(ctx)
    return [Row(name, b.name, cold[b.name], warm[b.name]) for b in builders]


def measure_rss(pybuild: Pybuild, work: Path, timeout: float) -> RssResult:
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
    return RssResult(vm_hwm_kb=hwm_kb, tree_max_kb=usage.ru_maxrss, seconds=seconds)


def report_saved(path: Path, *, markdown: bool) -> str:
    """The table of a ``--json`` file written by an earlier run."""
    saved = json.loads(path.read_text())
    rows = [Row(r["case"], r["tool"], r["cold"], r["warm"]) for r in saved["results"]]
    rss = saved.get("rss")
    if isinstance(rss, dict):
        rss = RssResult(rss["vm_hwm_kb"], rss["tree_max_kb"], rss["seconds"])
    others = [t for t in TOOLS if t != "pybuild" and (any(r.tool == t for r in rows)
                                                      or t in saved["unavailable"])]
    render = markdown_report if markdown else text_report
    return render(rows, rss, info=saved["machine"], versions=saved["versions"],
                  unavailable=saved["unavailable"], others=others, runs=saved["runs"])


def make_base(work: Path, runner: ProcessRunner) -> Path:
    if not MAKE_BASE.is_file():
        raise SystemExit(f"bench: {MAKE_BASE} not found (the conformance cases' base maker)")
    out = work / "base.tar"
    runner.check(["sh", str(MAKE_BASE), str(out)], timeout=120, what="make-base.sh")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        print(report_saved(Path(args.report), markdown=args.markdown))
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
    rows: list[Row] = []
    rss: RssResult | str | None = None
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
        for name in args.cases:
            if name in CASES:
                rows.extend(run_case(name, builders, work, args))
        if "rss" in args.cases:
            try:
                rss = measure_rss(pyb, work, args.timeout)
            except BuildFailed as e:
                rss = f"failed: {e}"
                log(f"rss: {rss}")
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

    others = [] if args.no_others else [t for t in TOOLS if t != "pybuild"]
    report = (markdown_report if args.markdown else text_report)(
        rows, rss, info=info, versions=versions, unavailable=unavailable, others=others,
        runs=args.runs)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": info, "versions": versions, "unavailable": unavailable, "runs": args.runs,
            "cases": {n: CASES[n].title for n in args.cases if n in CASES},
            "results": [r.as_dict() for r in rows],
            "rss": rss.as_dict() if isinstance(rss, RssResult) else rss,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
