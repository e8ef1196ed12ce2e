"""The escape corpus: a RUN written by a hostile Buildfile author tries to leave its root or
reach the host, one row each; what stops it is named, and the host is checked after.

Each row is a shell snippet run in a RUN of a busybox image that also holds tests/escape/
pbescape.c (raw syscalls busybox cannot make).  The snippet runs in a subshell of the step:
it must fail there (non-zero status) with the error of the mechanism that stops it
(``expect``), must not print a host secret, and every host sentinel the row names (mount
table, kernel modules, network, core_pattern, …, tests/escapefixtures.py) must be the same
before and after.  The ``PLANTED`` rows are allowed inside the step, as in docker (a setuid
file, a device node in the image); the escape they prepare is tried afterwards on the host
by an ordinary user, and must fail.

Placeholders in snippets: @SECRET@ (a host file beside the store), @SECRET_IN_FS@ (its path
inside its file system), @STORE@ (the store's root, holding STORE-SECRET), @PID@ (a host
process), @MAJOR@/@MINOR@ (the block device under them).

Rows that docs/security.md cites are by id.  Every row was seen to fail with confinement
switched off (see docs/security.md for how, and which rows the namespaces alone still stop).
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass

import pytest
from buildfixtures import make_context
from escapefixtures import MODE_NAMES, Host, Mode, as_nobody, compile_helper, plants

EPERM = "Operation not permitted|permission denied"
EACCES = "Permission denied"
ENOENT = "No such file or directory|can't open|No such file"
EROFS = "Read-only file system"


@dataclass(frozen=True)
class Escape:
    """One row: what the RUN ``tries`` (``run``, a shell snippet; ``options`` go after RUN),
    what ``stops`` it, the error ``expect``ed from it, and the host ``sentinels`` to watch."""

    id: str
    tries: str
    run: str
    stops: str
    expect: str
    sentinels: tuple[str, ...] = ("mounts",)
    options: str = ""
    rootless: str = ""          # what ``expect`` is rootless, when the first barrier differs there

    def expected(self, mode: Mode) -> str:
        return self.rootless if mode.user is not None and self.rootless else self.expect


#: Rootless, mknod of a real device fails before nodev matters: a user namespace cannot make one.
NO_MKNOD = EPERM

ROWS = [
    # -- leaving the root ------------------------------------------------------------------------
    Escape("chroot-escape", "the classic: chroot into a subdir without entering it, `..` up, chroot .",
           "/pbescape chroot-escape @SECRET@", "pivot_root, the old root detached (not chroot)", ENOENT),
    Escape("chroot-escape-to-store", "the classic chroot escape, then read the store",
           "/pbescape chroot-escape @STORE@/STORE-SECRET", "pivot_root, the old root detached", ENOENT),
    Escape("proc-root", "/proc/PID/root of every process, to the host's root and the store",
           "cat /proc/*/root@SECRET@ /proc/*/root@STORE@/STORE-SECRET", "pid namespace; pivot_root", ENOENT),
    Escape("read-store", "read the store by its host path", "ls @STORE@ && cat @STORE@/STORE-SECRET",
           "pivot_root: no host path exists in the step", ENOENT),
    Escape("context-link-out", "follow a symlink in the bound context to a file beside the context",
           "cat /ctx/out-link /ctx/../host-secret", "bind mount of the context only; links resolve in the root",
           ENOENT, options="--mount=type=bind,target=/ctx"),
    Escape("shocker", "open_by_handle_at on the host file system's root inode (the 'shocker' exploit)",
           "/pbescape shocker /etc/hosts @SECRET_IN_FS@", "seccomp (open_by_handle_at); no CAP_DAC_READ_SEARCH",
           EPERM),
    Escape("leaked-fd", "a descriptor of pybuild's left open into the step, pointing at the host",
           "for fd in /proc/self/fd/*; do readlink $fd; done | grep -v -e '^pipe:' -e '^/dev/null$' "
           "-e '^/proc/' && exit 0; exit 1", "pybuild opens everything close-on-exec", r"\A\Z"),
    # -- mounts ----------------------------------------------------------------------------------
    Escape("mount-tmpfs", "mount a tmpfs", "mkdir -p /mnt && mount -t tmpfs t /mnt",
           "seccomp (mount); no CAP_SYS_ADMIN", EPERM),
    Escape("mount-proc", "mount another proc", "mkdir -p /mnt && mount -t proc p /mnt",
           "seccomp (mount); no CAP_SYS_ADMIN", EPERM),
    Escape("mount-host-disk", "mknod the host's disk, mount it and read the secret",
           "mkdir -p /mnt && mknod /hd b @MAJOR@ @MINOR@ && mount /hd /mnt && cat /mnt/@SECRET_IN_FS@",
           "seccomp (mount); no CAP_SYS_ADMIN; nodev", EPERM),
    Escape("unshare-mount", "a new mount namespace (to mount in it)", "unshare -m true",
           "seccomp (unshare); no CAP_SYS_ADMIN", EPERM),
    Escape("unshare-user", "a new user namespace (root in it, every capability)", "unshare -U -r true",
           "seccomp (unshare)", EPERM),
    Escape("setns", "join the namespaces of PID 1", "nsenter -t 1 -m -u -i -n -p true", "seccomp (setns)", EPERM),
    # -- devices ---------------------------------------------------------------------------------
    Escape("mknod-disk", "mknod the host's disk in the root and read it",
           "mknod /hd b @MAJOR@ @MINOR@ && head -c 4096 /hd > /b && od -c /b | head -3",
           "the root is mounted nodev (rootless: mknod itself is refused)", EACCES, rootless=NO_MKNOD),
    Escape("mknod-disk-in-dev", "mknod the host's disk in /dev (a tmpfs) and read it",
           "mknod /dev/hd b @MAJOR@ @MINOR@ && head -c 4096 /dev/hd > /b && od -c /b | head -3",
           "/dev is nodev; its own nodes are bind mounts (rootless: mknod is refused)", EACCES,
           rootless=NO_MKNOD),
    Escape("mknod-disk-in-cache", "mknod the host's disk in a cache mount (on the host's disk) and read it",
           "mknod /cache/hd b @MAJOR@ @MINOR@ && head -c 4096 /cache/hd > /b && od -c /b | head -3",
           "every RUN mount is remounted nodev (rootless: mknod is refused)", EACCES,
           options="--mount=type=cache,target=/cache", rootless=NO_MKNOD),
    # -- the kernel ------------------------------------------------------------------------------
    Escape("insmod", "load a kernel module", "echo junk > /m.ko && insmod /m.ko",
           "seccomp (init_module, finit_module); no CAP_SYS_MODULE", EPERM, ("modules",)),
    Escape("finit-module", "finit_module(2)", "/pbescape module", "seccomp (finit_module)", EPERM, ("modules",)),
    Escape("kexec", "kexec_load(2): boot another kernel", "/pbescape kexec", "seccomp (kexec_load); no CAP_SYS_BOOT",
           EPERM, ("boot_id",)),
    Escape("reboot", "reboot(2)", "reboot -f", "seccomp (reboot); no CAP_SYS_BOOT; pid namespace", EPERM,
           ("boot_id",)),
    Escape("sysrq", "echo to /proc/sysrq-trigger", "echo h > /proc/sysrq-trigger",
           "/proc/sysrq-trigger read-only (absent on kernels without it)", f"{EROFS}|{ENOENT}|nonexistent"),
    Escape("core-pattern", "set kernel.core_pattern to run a host command as root",
           "echo '|/bin/touch /tmp/pbescape-core' > /proc/sys/kernel/core_pattern", "/proc/sys read-only", EROFS,
           ("core_pattern",)),
    Escape("write-sys", "change the host's loopback MTU through /sys", "echo 1500 > /sys/class/net/lo/mtu",
           "/sys read-only", EROFS, ("lo_mtu",)),
    Escape("masked-proc", "read the masked /proc files (kcore, keys, timer_list, sched_debug) and /sys/firmware",
           "for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do test -e $f && head -c 200 $f; "
           "done; ls /sys/firmware; exit 1", "runc's masked paths: /dev/null and an empty read-only tmpfs",
           r"\A\s*\Z"),
    Escape("swapon", "swapon a file", "dd if=/dev/zero of=/swap bs=1k count=64 2>/dev/null && swapon /swap",
           "seccomp (swapon)", EPERM),
    Escape("keyctl", "the host root's user keyring (keys are not namespaced)", "/pbescape keyctl",
           "seccomp (keyctl)", EPERM, ("keys",)),
    Escape("bpf", "create a BPF map", "/pbescape bpf", "seccomp (bpf); no CAP_SYS_ADMIN/CAP_BPF", EPERM),
    Escape("perf-event-open", "perf_event_open on every process of cpu 0", "/pbescape perf",
           "seccomp (perf_event_open)", EPERM),
    Escape("ptrace-outside", "ptrace a process of the host", "/pbescape ptrace @PID@",
           "pid namespace (no such pid); no CAP_SYS_PTRACE", "No such process|Operation not permitted"),
    # -- the host's network ----------------------------------------------------------------------
    Escape("raw-socket", "a raw IP socket on the host's network (ping)", "ping -c 1 -W 1 127.0.0.1",
           "no CAP_NET_RAW on the host's network", EPERM, ("network",)),
    Escape("packet-socket", "an AF_PACKET socket on the host's network (sniff, forge)", "/pbescape packet",
           "no CAP_NET_RAW on the host's network", EPERM, ("network",)),
    Escape("net-admin", "add an address to the host's loopback", "ip addr add 198.51.100.77/32 dev lo",
           "no CAP_NET_ADMIN", EPERM, ("network",)),
]


@dataclass(frozen=True)
class Planted:
    """A row where the step may plant something (docker allows it) and a host user then
    ``tries`` to use it: ``host(env)`` makes the attempt and returns what it printed, which
    must match ``expect``."""

    id: str
    tries: str
    run: str
    stops: str
    expect: str
    where: str                  # "store" (found in the store's dirs) or "mount" (`pybuild mount`)
    options: str = ""


PLANTED = [
    Planted("setuid-from-store", "a setuid-root binary in a layer, run by a host user from the store",
            "cp /pbescape /suid && chmod 4755 /suid", "the store's root is 0700", EACCES, "store"),
    Planted("setuid-through-mount", "a setuid-root binary, run by a host user through `pybuild mount`",
            "cp /pbescape /suid && chmod 4755 /suid", "`pybuild mount` is nosuid", "euid=65534", "mount"),
    Planted("device-from-store", "a 0666 node of the host's disk in a layer, opened by a host user from the store",
            "mknod -m 666 /suid b @MAJOR@ @MINOR@", "the store's root is 0700", EACCES, "store"),
    Planted("device-through-mount", "a 0666 node of the host's disk, opened by a host user through `pybuild mount`",
            "mknod -m 666 /suid b @MAJOR@ @MINOR@", "`pybuild mount` is nodev", EACCES, "mount"),
    # a cache mount's dir (0755) is in the store, not in a layer: only the store's root guards it
    Planted("setuid-in-cache-mount", "a setuid-root binary left in a cache mount, run by a host user from the store",
            "cp /pbescape /cache/suid && chmod 4755 /cache/suid", "the store's root is 0700", EACCES, "store",
            "--mount=type=cache,target=/cache"),
]


# == fixtures ====================================================================================
@pytest.fixture(scope="module", params=MODE_NAMES)
def mode(request) -> Mode:
    if request.param == "root":
        return Mode("root")
    return Mode("rootless", request.getfixturevalue("rootless_user"))


@pytest.fixture(scope="module")
def host(mode, base_tar, tmp_path_factory):
    """A store under a 0755 dir holding pbtest/busybox:base and escape/base (+ the helper)."""
    h = Host.make()
    try:
        h.store.mkdir()
        mode.give(h.store)
        base = h.top / "base.tar"
        base.write_bytes(base_tar.read_bytes())
        mode.give(base)
        mode.pybuild("import", str(base), "pbtest/busybox:base", store=h.store)
        h.plant_store_secret()
        ctx = make_context(h.top / "base-ctx")
        compile_helper(ctx)
        mode.give(ctx)
        built = mode.build(h.store, ctx, "FROM pbtest/busybox:base\nCOPY pbescape /pbescape\n", tag="escape/base")
        assert built.ok, built.proc.stdout + built.proc.stderr
        h.start_sleeper()
        yield h
    finally:
        h.stop()


def fill(text: str, h: Host) -> str:
    major, minor = h.device()
    values = {"SECRET": str(h.secret), "SECRET_IN_FS": h.secret_in_fs(), "STORE": str(h.store.resolve()),
              "PID": str(h.sleeper.pid if h.sleeper else 0), "MAJOR": str(major), "MINOR": str(minor)}
    return re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], text)


def run_row(mode: Mode, h: Host, row_id: str, run: str, options: str = "") -> tuple[int, str, str]:
    """Build ``RUN [options] (run) 2>&1; echo @@rc=$?`` on escape/base; returns the snippet's
    status, what it printed, and the whole build output."""
    ctx = make_context(h.top / f"ctx-{row_id}", {"out-link": b"x"})
    (ctx / "out-link").unlink()
    (ctx / "out-link").symlink_to("../host-secret")
    mode.give(ctx)
    buildfile = f"FROM escape/base\nRUN {options} ( {fill(run, h)} ) 2>&1; echo @@rc=$?\n"
    built = mode.build(h.store, ctx, buildfile, tag=f"escape/{row_id}")
    out = built.proc.stdout + built.proc.stderr
    assert built.ok, f"the step itself must run to its end:\n{out}"
    said = [line.split("] ", 1)[1] for line in built.proc.stdout.splitlines() if line.startswith("[")]
    rc = next(int(line[5:]) for line in said if line.startswith("@@rc="))
    return rc, "\n".join(line for line in said if not line.startswith("@@rc=")), out


# == the tests ===================================================================================
@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_escape_fails_and_the_host_is_untouched(mode, host, row):
    before = host.snapshot(row.sentinels)
    try:
        rc, said, out = run_row(mode, host, row.id, row.run, row.options)
    finally:
        after = host.snapshot(row.sentinels)
        host.restore(before, after)
    assert host.secret_text not in out and host.store_secret_text not in out, f"a host secret was read:\n{out}"
    assert after == before, f"host state changed ({row.tries}):\n{out}"
    assert host.secret.read_text() == host.secret_text + "\n"
    assert host.tracer_of_sleeper() == "0"
    assert rc != 0, f"{row.tries}: it worked inside the step:\n{said}"
    assert re.search(row.expected(mode), said, re.MULTILINE), f"{row.tries}: not stopped by {row.stops}:\n{said}"


@pytest.mark.parametrize("mode, row", [pytest.param(m, r, id=f"{m}-{r.id}") for m in MODE_NAMES for r in PLANTED
                                       if plants(m, r.where, r.run)], indirect=["mode"])
def test_planted_file_gives_a_host_user_nothing(mode, host, row, tmp_path):
    rc, said, out = run_row(mode, host, row.id, row.run, row.options)
    assert rc == 0, f"docker allows planting it; so must we:\n{said}"
    if row.where == "store":
        found = sorted(host.store.rglob("suid"), key=lambda p: p.stat().st_mtime)[-1:]
        assert found, "the planted file is in the store (a layer dir, a cache mount's dir)"
        st = found[0].lstat()
        assert st.st_mode & (stat.S_ISUID | stat.S_IFBLK), "kept as planted"
        target = found[0]
        attempt = as_nobody(str(target), "whoami") if row.id.startswith("setuid") else \
            as_nobody("head", "-c", "16", str(target))
        said_host = attempt.stdout + attempt.stderr
    else:
        point = host.top / f"mnt-{row.id}"
        point.mkdir(mode=0o755)
        mounted = mode.pybuild("mount", f"escape/{row.id}", str(point), store=host.store)
        assert mounted.returncode == 0, mounted.stderr
        try:
            attempt = as_nobody(str(point / "suid"), "whoami") if row.id.startswith("setuid") else \
                as_nobody("head", "-c", "16", str(point / "suid"))
            said_host = attempt.stdout + attempt.stderr
        finally:
            assert mode.pybuild("umount", str(point), store=host.store).returncode == 0
    assert re.search(row.expect, said_host), f"{row.tries}: not stopped by {row.stops}:\n{said_host}"
    assert "euid=0" not in said_host


def test_the_corpus_covers_the_issue():
    """The attempts issue 13 lists, each by a row id (≥ 20 rows in all)."""
    ids = {r.id for r in ROWS} | {r.id for r in PLANTED}
    required = {"chroot-escape", "mount-tmpfs", "mount-proc", "mount-host-disk", "mknod-disk", "insmod",
                "finit-module", "sysrq", "reboot", "ptrace-outside", "core-pattern", "read-store",
                "context-link-out", "raw-socket", "keyctl", "setuid-from-store", "unshare-user",
                "unshare-mount", "setns", "shocker", "bpf", "perf-event-open", "kexec", "swapon", "write-sys",
                "masked-proc"}
    assert required <= ids and len(ids) >= 20
    assert len(ids) == len(ROWS) + len(PLANTED), "row ids are unique"
