"""A dockerd of the benchmark's own: its own data root, exec root and socket, no networking.

The benchmark's copy of what tests/dockerd.py does, kept here so that the benchmark imports
nothing from the checkout (tests/dockerd.py imports pybuild's own modules, which may change
under a running benchmark): it talks to pybuild through its command line only.

The daemon lives under a fresh short dir D in /tmp (unix socket paths are limited to 108
bytes).  ``stop()`` ends only the process it started (by pid, then its containerd by the pid
file under D), unmounts whatever is left under D and removes D.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from mounts import unmount_under


class DaemonFailed(Exception):
    """The private dockerd did not start, or a docker command against it failed."""


class PrivateDockerd:
    def __init__(self, *, dockerd: str, timeout: float = 90.0) -> None:
        self.dockerd = dockerd
        self.dir = Path(tempfile.mkdtemp(prefix="pbdk.", dir="/tmp"))
        self.host = f"unix://{self.dir}/sock"
        self.log_path = self.dir / "log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._timeout = timeout

    def start(self, clients: list[str]) -> None:
        """Start it and wait until one of ``clients`` (docker executables) gets an answer."""
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
                raise DaemonFailed(f"dockerd exited with {self._proc.returncode}; log tail:\n"
                                   f"{self.log_tail()}")
            for client in clients:
                probe = subprocess.run([client, "-H", self.host, "version"], capture_output=True)
                if probe.returncode == 0:
                    return
            time.sleep(0.5)
        raise DaemonFailed(f"dockerd did not answer within {self._timeout:.0f}s; log tail:\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM the dockerd we started, wait (SIGKILL after 20 s), unmount, remove D.
        Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                _kill_pidfile(self.dir / "exec" / "containerd" / "containerd.pid")
        unmount_under(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


def _kill_pidfile(path: Path) -> None:
    """SIGKILL the containerd our dockerd started (its pid file is under our exec root)."""
    try:
        os.kill(int(path.read_text().strip()), signal.SIGKILL)
    except (OSError, ValueError):
        pass

