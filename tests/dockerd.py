"""A private dockerd for interoperability tests: its own data root, exec root and socket.

Started in the background under a fresh short dir D in /tmp (unix socket paths are limited to
108 bytes); no bridge, no iptables, so it touches no host networking.  ``stop()`` ends only
the process it started (by PID), unmounts whatever is left mounted under D and removes D.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from builder.layer import overlay

INSTALL_HINT = "run the CI install step (apt-get install -y docker.io skopeo umoci busybox-static) to get it"


def require_tool(name: str) -> str:
    """The path of ``name``; fails the test (never skips) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is not installed: {INSTALL_HINT}")
    return path


class DockerDaemon:
    def __init__(self, *, timeout: float = 60.0) -> None:
        self.dockerd = require_tool("dockerd")
        self.docker = require_tool("docker")
        self.dir = Path(tempfile.mkdtemp(prefix="dk.", dir="/tmp"))
        self.host = f"unix://{self.dir}/sock"
        self.log_path = self.dir / "log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._timeout = timeout

    def start(self) -> DockerDaemon:
        d = self.dir
        cmd = [self.dockerd, "--bridge=none", "--iptables=false", "--ip-masq=false",
               "--data-root", f"{d}/data", "--exec-root", f"{d}/exec", "--pidfile", f"{d}/pid",
               "-H", self.host]
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          start_new_session=True)
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"dockerd exited with {self._proc.returncode}; log tail:\n{tail}")
            probe = subprocess.run([self.docker, "-H", self.host, "version"], capture_output=True)
            if probe.returncode == 0:
                return self
            time.sleep(0.5)
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"dockerd did not answer within {self._timeout:.0f}s; log tail:\n{tail}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def run(self, *args: str, check: bool = True, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``docker -H <ours> args…``; with ``check`` a failure raises with its output."""
        proc = subprocess.run([self.docker, "-H", self.host, *args], capture_output=True,
                              text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def stop(self) -> None:
        """SIGTERM the dockerd we started, wait (SIGKILL after 20 s), unmount, remove D."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                _kill_pidfile(self.dir / "exec" / "containerd" / "containerd.pid")
        _unmount_under(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> DockerDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kill_pidfile(path: Path) -> None:
    """SIGKILL the containerd our dockerd started (its pid file is under our exec root)."""
    try:
        os.kill(int(path.read_text().strip()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _unmount_under(root: Path) -> None:
    """Lazily unmount every mount point at or below ``root``, deepest first."""
    for point in overlay.mounts_under(str(root)):
        subprocess.run(["umount", "-l", point], capture_output=True)
