"""Differential: what a RUN step's command is confined by, under docker's classic builder (on a
dockerd the test starts) and under pybuild, from the same base and the same commands.

Compared: the five capability sets, no_new_privs, the seccomp mode and the supplementary
groups, as root and as USER user, user:root and 1000; the answer (errno) of 58 system calls
docker's profile treats specially, each called with bad arguments (tests/escape/pbescape.c
``probe``); /dev; and every mount the command sees (mount point, type, per-mount options).
Where pybuild differs on purpose, the difference is spelled out below and asserted as such,
so a change on either side shows."""

from __future__ import annotations

import os

import pytest
from buildfixtures import build, make_context
from conftest import pybuild
from dockerd import DockerDaemon
from escapefixtures import compile_helper

PROBED = ("mount umount2 pivot_root unshare setns clone3 kexec_load kexec_file_load init_module finit_module "
          "delete_module reboot swapon swapoff keyctl add_key request_key bpf perf_event_open open_by_handle_at "
          "iopl ioperm acct settimeofday clock_settime syslog userfaultfd quotactl fsopen fsmount fspick open_tree "
          "move_mount mount_setattr sethostname setdomainname mbind set_mempolicy kcmp pidfd_getfd "
          "process_madvise lookup_dcookie uselib ustat sysfs nfsservctl name_to_handle_at chroot ptrace "
          "process_vm_readv fanotify_init io_uring_setup memfd_secret futex_waitv set_mempolicy_home_node "
          "cachestat fchmodat2 nr_500").split()

#: Allowed by moby's current profile (pybuild's source), denied by docker 20.10's (Debian 12's
#: docker.io): name_to_handle_at, and process_vm_readv/writev on Linux >= 4.8.
NEWER_PROFILE = {"name_to_handle_at", "process_vm_readv"}

STEPS = (
    "grep -E '^(Cap|NoNewPrivs|Seccomp|Groups)' /proc/self/status | tr '\\t' ' ' | sed 's/^/@@status /'; "
    "id | sed 's/^/@@status /'",
    f"/pbescape probe {' '.join(PROBED)} | sed 's/^/@@probe /'",
    "cd /dev && stat -c '@@dev %n %A %u %g %t:%T' *",
    "awk '{print \"@@mount\", $5, $6, $(NF-2)}' /proc/self/mountinfo",
)
USER_STEP = "grep -E '^(Cap|Groups)' /proc/self/status | tr '\\t' ' ' | sed 's/^/@@user /'; id | sed 's/^/@@user /'"


def buildfile(run_flags: str) -> str:
    runs = "".join(f"RUN {run_flags}{step}\n" for step in STEPS)
    users = "".join(f"USER {user}\nRUN {run_flags}{USER_STEP}\n" for user in ("user", "user:root", "1000"))
    return f"FROM pbtest/busybox:base\nCOPY pbescape /pbescape\n{runs}{users}"


def said(output: str) -> list[str]:
    """The @@ lines of a build's output (pybuild prefixes them with ``[N/M] ``)."""
    lines = (line.split("] ", 1)[1] if line.startswith("[") else line for line in output.splitlines())
    return [line for line in lines if line.startswith("@@")]


@pytest.fixture(scope="module")
def both(session_store, tmp_path_factory) -> tuple[list[str], list[str]]:
    """The @@ lines of docker's build and of pybuild's (both on networks of their own)."""
    tmp = tmp_path_factory.mktemp("confine-diff")
    ctx = make_context(tmp / "ctx")
    compile_helper(ctx)
    pybuild("save", "pbtest/busybox:base", "-o", str(tmp / "base.tar"), root=session_store)
    with DockerDaemon() as docker:
        docker.run("load", "-i", str(tmp / "base.tar"))
        (ctx / "Dockerfile").write_text(buildfile(""))
        theirs = docker.run("build", "--network", "none", "--no-cache", "-t", "confine", str(ctx),
                            env=dict(os.environ, DOCKER_BUILDKIT="0")).stdout
    (ctx / "Dockerfile").unlink()
    ours = build(session_store, ctx, "--no-cache", buildfile=buildfile("--network=none "), tag="confine").proc.stdout
    return said(theirs), said(ours)


def section(lines: list[str], kind: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in lines if line.startswith(f"@@{kind} ")]


@pytest.mark.parametrize("kind", ["status", "user"])
def test_same_capabilities_and_seccomp_mode(both, kind):
    theirs, ours = both
    assert section(ours, kind) == section(theirs, kind)
    assert section(ours, kind), "the step printed its status"


def test_same_answers_to_the_calls_docker_denies(both):
    theirs = dict(line.split("=") for line in section(both[0], "probe"))
    ours = dict(line.split("=") for line in section(both[1], "probe"))
    assert set(ours) == set(theirs) == set(PROBED)
    assert {k: v for k, v in ours.items() if k not in NEWER_PROFILE} == \
        {k: v for k, v in theirs.items() if k not in NEWER_PROFILE}
    for call in NEWER_PROFILE:
        assert ours[call] != "EPERM", f"{call} is allowed by moby's current profile"
    assert ours["mount"] == "EPERM" and ours["fchmodat2"] == "ENOSYS" and ours["clone3"] == "ENOSYS"


def test_same_dev(both):
    theirs, ours = both
    assert section(ours, "dev") == section(theirs, "dev")


#: Mounts that only one side has, by design: docker shows its cgroups (pybuild mounts none);
#: pybuild binds each of /dev's six devices onto itself (so /dev can be nodev).
ONLY_DOCKER = ("/sys/fs/cgroup",)
ONLY_OURS = tuple(f"/dev/{name}" for name in ("null", "zero", "full", "random", "urandom", "tty"))
#: Per-mount options pybuild adds: nodev on the root, on /dev and on the bound runtime files.
NODEV_ADDED = ("/", "/dev", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname")


def test_same_mounts_but_the_documented_differences(both):
    def view(lines: list[str], drop: tuple[str, ...]) -> dict[str, tuple[str, frozenset[str]]]:
        out = {}
        for line in section(lines, "mount"):
            point, options, fstype = line.split(" ")
            if not any(point == d or point.startswith(d + "/") for d in drop):
                out[point] = (fstype, frozenset(options.split(",")))
        return out
    theirs, ours = view(both[0], ONLY_DOCKER), view(both[1], ONLY_OURS)
    for point in NODEV_ADDED:
        fstype, options = theirs[point]
        assert "nodev" not in options, f"docker mounts {point} without nodev"
        theirs[point] = (fstype, options | {"nodev"})
    assert ours == theirs
