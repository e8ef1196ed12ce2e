"""What the escape corpus (tests/test_escape.py) needs around its table: the compiled helper,
the host's sentinels, and the way a build is run in each mode.

- ``compile_helper`` builds tests/escape/pbescape.c static with gcc, for the busybox image.
- ``Host`` is the host side: a secret file beside the store, a planted store secret, a sleeping
  process to ptrace, the block device under them, and ``SENTINELS``: each a function reading
  one piece of host state (mount table, kernel modules, network, core_pattern, …) that no row
  may change.  ``restore`` puts back what an escape did change, so a failing row (or a run
  with confinement switched off by hand) leaves the machine as it was.
- ``Mode``: how builds run: as root, or rootless (pybuild run by an ordinary user, in its user
  namespace); the same table runs under both.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from buildfixtures import Built, build, pybuild
from dockerd import require_tool
from rootlessfixtures import RootlessUser

HELPER_SOURCE = Path(__file__).resolve().parent / "escape" / "pbescape.c"
NOBODY = 65534


def compile_helper(out_dir: Path) -> Path:
    """tests/escape/pbescape.c → ``out_dir``/pbescape, a static binary (gcc, libc6-dev)."""
    gcc = require_tool("gcc")
    out = out_dir / "pbescape"
    subprocess.run([gcc, "-static", "-O1", "-Wall", "-o", str(out), str(HELPER_SOURCE)], check=True)
    return out


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    """Run ``argv`` on the host as uid/gid 65534 with no groups and no capabilities.  The
    program is exec'd by a shell already running as nobody: setpriv itself still holds its
    capabilities while it execs, so a path below a 0700 dir would open for it."""
    setpriv = require_tool("setpriv")
    return subprocess.run([setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                           "sh", "-c", 'exec "$@"', "sh", *argv], capture_output=True, text=True, timeout=30)


# == the host ====================================================================================
def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return f"<{e.strerror}>"


def _mounts_outside_tmp() -> list[str]:
    """Mount points of the host outside /tmp (other test runs mount and unmount under /tmp;
    a RUN's escaped mount would land at its own path, like /mnt)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted(p for p in points if not p.startswith("/tmp/"))


def _keys() -> list[tuple[str, ...]]:
    """The host's keys as (id, type, description), without usage counts and session keyrings
    (both change with every login and process of the machine)."""
    keys = []
    for line in _read("/proc/keys").splitlines():
        fields = line.split(None, 8)
        if len(fields) == 9 and not fields[8].startswith("_ses"):
            keys.append((fields[0], fields[7], fields[8].split(":")[0]))
    return sorted(keys)


def _addresses() -> str:
    ip = shutil.which("ip")
    out = subprocess.run([ip, "-o", "addr"], capture_output=True, text=True).stdout if ip else ""
    return f"{sorted(socket.if_nameindex())}\n{out}"


#: Host state no row may change: name → a function reading it.
SENTINELS: dict[str, Callable[[], object]] = {
    "mounts": _mounts_outside_tmp,
    "modules": lambda: sorted(os.listdir("/sys/module")),
    "network": _addresses,
    "core_pattern": lambda: _read("/proc/sys/kernel/core_pattern"),
    "lo_mtu": lambda: _read("/sys/class/net/lo/mtu"),
    "keys": lambda: _keys(),
    "boot_id": lambda: _read("/proc/sys/kernel/random/boot_id"),
}

#: What to do on the host if a sentinel did change (an escape happened): put it back.
RESTORE: dict[str, Callable[[object], None]] = {
    "core_pattern": lambda old: Path("/proc/sys/kernel/core_pattern").write_text(str(old)),
    "lo_mtu": lambda old: Path("/sys/class/net/lo/mtu").write_text(str(old)),
    "network": lambda old: subprocess.run(["ip", "addr", "del", "198.51.100.77/32", "dev", "lo"],
                                          capture_output=True),
}


@dataclass
class Host:
    """The host side of the corpus, under one 0755 directory (so that only the store's own
    permissions stand between a host user and the layers)."""

    top: Path
    store: Path
    secret: Path                       # a host file no RUN may read or change
    secret_text: str
    store_secret_text: str
    sleeper: subprocess.Popen | None = None
    _snapshots: dict[str, object] = field(default_factory=dict)

    @classmethod
    def make(cls) -> Host:
        top = Path(tempfile.mkdtemp(prefix="pbescape.", dir="/tmp"))
        os.chmod(top, 0o755)
        secret = top / "host-secret"
        text = f"HOST-SECRET-{secrets.token_hex(8)}"
        secret.write_text(text + "\n")
        host = cls(top, top / "store", secret, text, f"STORE-SECRET-{secrets.token_hex(8)}")
        return host

    def plant_store_secret(self) -> None:
        """A file in the store's root, where no RUN may reach."""
        (self.store / "STORE-SECRET").write_text(self.store_secret_text + "\n")

    def start_sleeper(self) -> int:
        self.sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
        return self.sleeper.pid

    def stop(self) -> None:
        if self.sleeper is not None and self.sleeper.poll() is None:
            os.kill(self.sleeper.pid, signal.SIGKILL)
            self.sleeper.wait()
        shutil.rmtree(self.top, ignore_errors=True)

    def device(self) -> tuple[int, int]:
        """major, minor of the block device holding the secret (and the store)."""
        dev = os.stat(self.secret).st_dev
        assert os.major(dev) != 0, f"{self.secret} is not on a block device: the disk rows need one"
        return os.major(dev), os.minor(dev)

    def secret_in_fs(self) -> str:
        """The secret's path relative to the root of its file system."""
        path = str(self.secret)
        mount = path
        while not os.path.ismount(mount):
            mount = os.path.dirname(mount)
        return os.path.relpath(path, mount)

    def tracer_of_sleeper(self) -> str:
        assert self.sleeper is not None
        status = _read(f"/proc/{self.sleeper.pid}/status")
        return next((line.split()[1] for line in status.splitlines() if line.startswith("TracerPid:")), "?")

    def snapshot(self, names: tuple[str, ...]) -> dict[str, object]:
        return {name: SENTINELS[name]() for name in names}

    def restore(self, before: dict[str, object], after: dict[str, object]) -> None:
        for name, old in before.items():
            if after.get(name) != old and name in RESTORE:
                RESTORE[name](old)


# == modes =======================================================================================
@dataclass(frozen=True)
class Mode:
    """How the corpus builds: ``name`` for the test ids; ``user`` (rootless) is the ordinary
    user (tests/rootlessfixtures.py) whose pybuild runs every build, in its user namespace."""

    name: str
    user: RootlessUser | None = None

    def give(self, path: Path) -> Path:
        """Make ``path`` (a context, the store's dir) the builder's: the rootless user's."""
        if self.user is not None:
            self.user.own(path)
        return path

    def build(self, store: Path, context: Path, buildfile: str, *, tag: str) -> Built:
        if self.user is None:
            return build(store, context, "--no-cache", buildfile=buildfile, tag=tag, check=False, validate=False)
        path = context.parent / f"{tag.replace('/', '_')}.Buildfile"
        path.write_text(buildfile)
        self.give(path)
        proc = self.user.pybuild("build", "--no-cache", "-f", str(path), "-t", tag, str(context), root=store,
                                 check=False)
        return Built(proc, store, tag)

    def pybuild(self, *args: str, store: Path):
        if self.user is None:
            return pybuild(*args, root=store, check=False)
        return self.user.pybuild(*args, root=store, check=False)



#: The modes by name; "rootless" gets its user from the ``rootless_user`` fixture.
MODE_NAMES = ("root", "rootless")


def plants(mode: str, where: str, run: str) -> bool:
    """Whether a PLANTED row applies in ``mode``: rootless, `pybuild mount` is refused (there
    is no mount to use a planted file through) and no device node can be made at all."""
    return mode == "root" or (where != "mount" and "mknod" not in run)
