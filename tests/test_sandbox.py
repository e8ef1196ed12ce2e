"""The RUN sandbox: what a command sees, what stays out of the layer, and that nothing —
mount, process, staging dir or tag — survives a failed, interrupted or killed build."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from buildfixtures import build, make_context
from conftest import REPO
from imagecheck import history_lines, layer_lines, mounts_under, validate_image

from builder.store.store import Store

#: A sleep length no other process uses (this test run's pid in the digits: suites running
#: side by side must not take each other's sleepers for their own).
MARKER = f"987.{os.getpid():07d}"


def run_output(proc) -> list[str]:
    """The lines a RUN printed (prefixed ``[N/M] ``)."""
    return [line.split("] ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("[")]


def test_what_a_run_sees(tmp_path, store_root):
    ctx = make_context(tmp_path / "ctx", {"Buildfile": "FROM pbtest/busybox:base\n"
                       "RUN echo pid=$$; echo dev=$(ls /dev | tr '\\n' ' '); "
                       "echo resolv=$(md5sum < /etc/resolv.conf); echo hosts=$(md5sum < /etc/hosts); "
                       "echo hostname=$(hostname); touch /sys/x 2>/dev/null || echo sys=ro; "
                       "test -r /proc/self/status && echo proc=yes; echo path=$PATH home=$HOME\n"})
    proc = build(store_root, ctx, tag="t").proc
    out = dict(line.split("=", 1) for line in run_output(proc))
    assert out["pid"] == "1", "the command is PID 1 of its own pid namespace"
    assert set(out["dev"].split()) >= {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm"}
    assert out["resolv"].split()[0] == md5(Path("/etc/resolv.conf").read_bytes())
    assert out["hosts"].split()[0] == md5(Path("/etc/hosts").read_bytes())
    assert out["hostname"] != socket.gethostname(), "own uts namespace"
    assert (out["sys"], out["proc"]) == ("ro", "yes")
    assert out["path"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin home=/root"
    store = Store(store_root)
    # reading, and the sandbox's own mounts, left nothing: docker classic records an empty layer
    [entry] = history_lines(store, store.resolve("t"), skip=1)
    assert entry.startswith("empty  /bin/sh -c echo pid=$$;")


def test_runtime_files_never_reach_the_layer(tmp_path, store_root):
    host_resolv = Path("/etc/resolv.conf").read_bytes()
    ctx = make_context(tmp_path / "ctx", {"Buildfile": "FROM pbtest/busybox:base\n"
                       "RUN echo nameserver 192.0.2.1 > /etc/resolv.conf; echo 127.0.0.9 x >> /etc/hosts; "
                       "mkdir /dev/extra; touch /proc/x 2>/dev/null; echo kept > /etc/kept\n"})
    build(store_root, ctx, tag="t")
    store = Store(store_root)
    image_id = store.resolve("t")
    validate_image(store, image_id)
    [layer] = layer_lines(store, image_id, skip=1)
    kept = hashlib.sha256(b"kept\n").hexdigest()
    assert layer == ["d 0755 0:0 etc", f"f 0644 0:0 5 {kept} etc/kept"]
    assert Path("/etc/resolv.conf").read_bytes() == host_resolv, "the host's file must never change"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_failed_run_stops_the_build_and_leaves_nothing(tmp_path, store_root):
    buildfile = "FROM pbtest/busybox:base\nRUN echo partial > /p && exit 3\nCMD [\"x\"]\n"
    ctx = make_context(tmp_path / "ctx", {"Buildfile": buildfile})
    proc = build(store_root, ctx, tag="t", check=False).proc
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == \
        f"pybuild: error: {ctx / 'Buildfile'}:2: step 2/3: RUN echo partial > /p && exit 3: exit code 3"
    store = Store(store_root)
    assert "t:latest" not in store.tags()
    assert_clean(store_root, tmp_path)


@pytest.mark.parametrize("sig, code", [
    pytest.param(signal.SIGINT, 130, id="ctrl-c"),
    pytest.param(signal.SIGTERM, 143, id="sigterm"),
])
def test_interrupted_build_cleans_up(tmp_path, store_root, sig, code):
    proc = start_sleeping_build(tmp_path, store_root)
    os.killpg(proc.pid, sig)                     # what a terminal's Ctrl-C does
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        state = processes_of(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in sleepers():
            os.kill(pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"pybuild did not stop within 20 s of {sig.name}; its processes then:\n{state}")
    assert proc.returncode == code, err
    assert "stopped and cleaned up" in err
    assert sleepers() == [], "the RUN's processes must die with the build"
    assert_clean(store_root, tmp_path)


def test_killed_build_leaves_nothing_running_and_the_next_build_works(tmp_path, store_root):
    proc = start_sleeping_build(tmp_path, store_root)
    proc.kill()                                  # SIGKILL: no cleanup code runs in pybuild
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sleepers() == [], "PR_SET_PDEATHSIG must take the sandbox down with pybuild"
    assert mounts_under(store_root, tmp_path) == []
    ctx = make_context(tmp_path / "ctx", {"Buildfile": "FROM pbtest/busybox:base\nRUN echo ok > /ok\n"})
    build(store_root, ctx, tag="after")
    store = Store(store_root)                    # the new Store swept the dead build's staging
    assert sorted(os.listdir(store_root / "tmp")) == []
    validate_image(store, store.resolve("after"))
    for layer in (store_root / "layers").iterdir():
        assert (layer / "meta.json").is_file() and (layer / "diff").is_dir(), "half-written layer"


def start_sleeping_build(tmp_path: Path, store_root: Path) -> subprocess.Popen:
    ctx = make_context(tmp_path / "ctx",
                       {"Buildfile": f"FROM pbtest/busybox:base\nRUN echo started; sleep {MARKER}\n"})
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "builder", "--root", str(store_root), "-t", "t", str(ctx)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    for line in proc.stdout:
        if "started" in line:
            break
    deadline = time.monotonic() + 10
    while not sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleepers(), "the RUN did not start"
    return proc


def processes_of(session: int) -> str:
    """pid, state, kernel wait channel and signal masks of every process of ``session`` and
    of the sleepers (to tell why a build did not stop)."""
    lines = []
    for pid in sorted(set(filter(str.isdigit, os.listdir("/proc"))), key=int):
        try:
            status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if ":\t" in line)
            if os.getsid(int(pid)) != session and int(pid) not in sleepers():
                continue
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        lines.append(f"{pid} ppid={status.get('PPid', '?').strip()} {status.get('State', '?').strip()} "
                     f"wchan={wchan} blk={status.get('SigBlk', '?').strip()} "
                     f"ign={status.get('SigIgn', '?').strip()} cgt={status.get('SigCgt', '?').strip()} {cmd[:100]}")
    return "\n".join(lines)


def sleepers() -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if MARKER.encode() in cmdline:
            found.append(int(pid))
    return found


def assert_clean(store_root: Path, tmp_path: Path) -> None:
    assert mounts_under(store_root, tmp_path) == [], "a mount was left behind"
    assert os.listdir(store_root / "tmp") == [], "staging was left behind"
    assert "t:latest" not in Store(store_root).tags()
