"""The confinement's parts one by one (layer/capabilities.py, seccomp_profile.py, seccomp.py,
procfs.py, devfs.py, confine.py, kernel.py) and `pybuild info`, which reports them.  What a
hostile RUN cannot do with all of them together is tests/test_escape.py; that they match
docker's is tests/test_confine_docker.py."""

from __future__ import annotations

import errno
import json
import os
import re

import pytest
from buildfixtures import build, make_context
from conftest import pybuild

from builder.layer import capabilities, confine, kernel, seccomp, seccomp_profile
from builder.layer.capabilities import CapabilitySet

DOCKER_MASK = 0xA80425FB     # CapBnd of a docker container (`grep Cap /proc/self/status`)


def run_output(proc) -> list[str]:
    return [line.split("] ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("[")]


# == capabilities ================================================================================
def test_docker_default_capabilities_have_dockers_mask():
    assert CapabilitySet.of(capabilities.DOCKER_DEFAULT).mask == DOCKER_MASK
    assert len(capabilities.DOCKER_DEFAULT) == 14
    assert capabilities.for_run("none").mask == DOCKER_MASK
    assert capabilities.for_run("default").names == frozenset(capabilities.DOCKER_DEFAULT) - {"NET_RAW"}
    assert CapabilitySet.from_mask(DOCKER_MASK) == capabilities.for_run("none")


# == the seccomp profile (pure) ==================================================================
@pytest.mark.parametrize("call, caps, allowed", [
    pytest.param("mount", capabilities.DOCKER_DEFAULT, False, id="mount-denied"),
    pytest.param("mount", ("SYS_ADMIN",), True, id="mount-with-sys-admin"),
    pytest.param("chroot", capabilities.DOCKER_DEFAULT, True, id="chroot-with-sys-chroot"),
    pytest.param("chroot", (), False, id="chroot-without"),
    pytest.param("reboot", capabilities.DOCKER_DEFAULT, False, id="reboot-denied"),
    pytest.param("ptrace", capabilities.DOCKER_DEFAULT, True, id="ptrace-allowed-since-4.8"),
    pytest.param("open_by_handle_at", capabilities.DOCKER_DEFAULT, False, id="shocker-denied"),
    pytest.param("open_by_handle_at", ("DAC_READ_SEARCH",), True, id="shocker-with-dac-read-search"),
    pytest.param("keyctl", capabilities.DOCKER_DEFAULT, False, id="keyctl-never"),
    pytest.param("arch_prctl", capabilities.DOCKER_DEFAULT, True, id="amd64-only-call"),
])
def test_profile_conditions(call, caps, allowed):
    assert (call in seccomp_profile.allowed_names(frozenset(caps), "x86_64")) is allowed


def test_profile_argument_rules_without_sys_admin():
    rules = {r.name: r for r in seccomp_profile.rules(frozenset(capabilities.DOCKER_DEFAULT), "x86_64")}
    assert rules["clone"].args[0].mask == seccomp_profile.CLONE_NAMESPACE_FLAGS
    assert rules["clone3"].errno == errno.ENOSYS
    assert rules["socket"].args[0].value == seccomp_profile.AF_VSOCK
    with_admin = {r.name for r in seccomp_profile.rules(frozenset({"SYS_ADMIN"}), "x86_64")
                  if not r.args and r.errno is None}
    assert {"clone", "clone3"} <= with_admin


# == the filter, installed in a child ============================================================
def in_child(fn) -> int:
    """Run ``fn`` in a forked child; its return value (0..255) is the exit status."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = fn()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_filter_denies_with_eperm_and_newer_calls_get_enosys():
    conf = confine.prepare("none")
    assert conf.filter.newest >= 435 and conf.filter.rules > 300

    def child() -> int:
        conf.filter.install()
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mount(b"none", b"/mnt", b"tmpfs", 0, None) == 0 or ctypes.get_errno() != errno.EPERM:
            return 1
        if libc.syscall(452, -1, None, 0, 0) != -1 or ctypes.get_errno() != errno.ENOSYS:   # fchmodat2
            return 2
        if libc.syscall(435, None, 0) != -1 or ctypes.get_errno() != errno.ENOSYS:          # clone3
            return 3
        if os.getpid() <= 0 or not os.listdir("/"):
            return 4
        with open("/proc/self/status") as f:
            return 0 if "Seccomp:\t2" in f.read() else 5
    assert in_child(child) == 0


def test_libseccomp_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(seccomp, "_lib", None)
    monkeypatch.setattr(seccomp.ctypes, "CDLL", lambda *a, **k: (_ for _ in ()).throw(OSError("not found")))
    with pytest.raises(seccomp.SandboxError, match="install libseccomp2"):
        seccomp.libseccomp()


# == what a RUN sees ============================================================================
def test_a_run_is_confined(tmp_path, store_root):
    """The sets and mounts of a RUN's command, as root and as USER user."""
    ctx = make_context(tmp_path / "ctx", {"Buildfile": "FROM pbtest/busybox:base\n"
                       "RUN --network=none grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; "
                       "awk '$5 == \"/\" {print \"root=\" $6}' /proc/self/mountinfo; "
                       "cat /proc/keys | wc -c | sed s/^/keys=/\n"
                       "RUN grep CapBnd /proc/self/status | sed s/CapBnd/HostNet/\n"
                       "USER user\nRUN grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status | sed s/^/user-/\n"})
    out = dict(line.split(":\t") if ":\t" in line else line.split("=", 1)
               for line in run_output(build(store_root, ctx, tag="t").proc))
    assert out["CapBnd"] == out["CapPrm"] == out["CapEff"] == f"{DOCKER_MASK:016x}"
    assert out["CapInh"] == out["CapAmb"] == "0" * 16
    assert (out["NoNewPrivs"], out["Seccomp"]) == ("0", "2")
    assert "nodev" in out["root"].split(","), "the root is nodev"
    assert out["keys"] == "0", "/proc/keys is masked"
    assert int(out["HostNet"], 16) == DOCKER_MASK & ~(1 << capabilities.NUMBER["NET_RAW"])
    assert (out["user-CapPrm"], out["user-CapEff"]) == ("0" * 16, "0" * 16)
    assert int(out["user-CapBnd"], 16) == DOCKER_MASK & ~(1 << capabilities.NUMBER["NET_RAW"])


def test_pivot_root_leaves_no_trace_in_the_layer(tmp_path, store_root):
    """pivot_root(".", ".") needs no directory for the old root: a RUN that changes nothing
    still records an empty layer, and the runtime's mounts add nothing."""
    ctx = make_context(tmp_path / "ctx", {"Buildfile": "FROM pbtest/busybox:base\nRUN ls / > /dev/null\n"})
    built = build(store_root, ctx, tag="t")
    assert built.history() == ["empty  /bin/sh -c ls / > /dev/null"]


# == kernel features and pybuild info ============================================================
def test_kernel_features_found_here():
    found = {f.name: f.available for f in kernel.features()}
    assert set(found) == {"openat2", "overlay in a user namespace", "idmapped mounts", "seccomp filters"}
    assert found["openat2"] and found["seccomp filters"], "pybuild needs both (Linux >= 5.6)"


def test_info_json_structure(tmp_path):
    info = json.loads(pybuild("info", "--json", root=tmp_path / "store").stdout)
    assert list(info) == ["store", "snapshotter", "user", "kernel", "confinement"]
    assert info["store"] == {"root": str(tmp_path / "store"), "exists": False}, "info creates no store"
    assert info["snapshotter"]["name"] == "overlay"
    assert info["user"] == {"uid": 0, "root": True, "user_namespace": False,
                            "mapping": "root: no user namespace, ids are the host's"}
    conf = info["confinement"]
    assert conf["capabilities"]["none"] == CapabilitySet.of(capabilities.DOCKER_DEFAULT).sorted()
    assert "NET_RAW" not in conf["capabilities"]["default"]
    assert conf["seccomp"]["denied"] == "EPERM" and conf["seccomp"]["rules"] > 300
    assert conf["no_new_privs"] is False
    assert "/proc/sys" in conf["proc_read_only"] and "/proc/keys" in conf["proc_masked"]


def test_info_text(tmp_path):
    text = pybuild("info", root=tmp_path / "store").stdout
    heads = [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")]
    assert heads == ["Store", "Snapshotter", "User", "Kernel", "Confinement of RUN (docker's default container)"]
    assert re.search(r"^  capabilities:  14 with --network=none: CHOWN DAC_OVERRIDE .* SETFCAP$", text, re.M)
    assert re.search(r"^  seccomp:       libseccomp \d+\.\d+\.\d+: docker's default profile, \d+ rules", text, re.M)
    assert "  openat2:" in text and "  overlay in a user namespace:" in text and "  idmapped mounts:" in text
