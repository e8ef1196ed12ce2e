"""A private dockerd for interoperability tests: its own data root, exec root and socket.

Started in the background under a fresh short dir D in /tmp (unix socket paths are limited to
108 bytes); no bridge, no iptables, so it touches no host networking.  ``stop()`` ends only
the process it started (by PID), unmounts whatever is left mounted under D and removes D.

``offline=True`` gives the daemon an HTTP(S) proxy on a loopback port where nothing listens,
so an image pull fails at once instead of leaving the machine (a test that expects the local
image to be used proves it so).  ``buildkit(…)`` runs ``DOCKER_BUILDKIT=1 docker build`` with
docker 20.10's own client (BUILDKIT_CLIENT): a newer client without buildx cannot.
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

#: The docker client that can do ``DOCKER_BUILDKIT=1`` builds: docker 20.10's (package docker.io).
#: Another client earlier on PATH (a 28.x one without buildx) refuses them.
BUILDKIT_CLIENT = "/usr/bin/docker"

#: A loopback port nothing listens on (discard): the proxy of an offline daemon.
DEAD_PROXY = "http://127.0.0.1:9"

INSTALL_HINT = ("run the CI install step (apt-get install -y docker.io skopeo umoci busybox-static openssh-client) "
                "to get it")


def require_tool(name: str) -> str:
    """The path of ``name``; fails the test (never skips) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is not installed: {INSTALL_HINT}")
    return path


class DockerDaemon:
    def __init__(self, *, timeout: float = 60.0, offline: bool = False) -> None:
        self.dockerd = require_tool("dockerd")
        self.docker = require_tool("docker")
        self.dir = Path(tempfile.mkdtemp(prefix="dk.", dir="/tmp"))
        self.host = f"unix://{self.dir}/sock"
        self.log_path = self.dir / "log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._timeout = timeout
        self.offline = offline

    def start(self) -> DockerDaemon:
        d = self.dir
        cmd = [self.dockerd, "--bridge=none", "--iptables=false", "--ip-masq=false",
               "--data-root", f"{d}/data", "--exec-root", f"{d}/exec", "--pidfile", f"{d}/pid",
               "-H", self.host]
        env = None
        if self.offline:        # every pull goes to a proxy that refuses it: nothing leaves
            env = {**{k: v for k, v in os.environ.items() if k.lower() != "no_proxy"},
                   "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY}
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          start_new_session=True, env=env)
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

    def buildkit(self, *args: str, check: bool = True, timeout: float = 300,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``DOCKER_BUILDKIT=1 docker -H <ours> build --progress=plain --network none args…``
        with docker 20.10's client (our dockerd has no bridge: a RUN on the default network
        fails with "network bridge not found"); stdout and stderr together in ``stdout``
        (BuildKit's plain progress goes to stderr).  With ``check`` a failure raises."""
        if not os.access(BUILDKIT_CLIENT, os.X_OK):
            raise AssertionError(f"{BUILDKIT_CLIENT} is not installed: {INSTALL_HINT}")
        network = () if "--network" in args else ("--network", "none")
        proc = subprocess.run([BUILDKIT_CLIENT, "-H", self.host, "build", "--progress=plain", *network, *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              env={**os.environ, **(env or {}), "DOCKER_BUILDKIT": "1"})
        if check and proc.returncode != 0:
            raise AssertionError(f"DOCKER_BUILDKIT=1 docker build {' '.join(args)} failed "
                                 f"({proc.returncode}):\n{proc.stdout}")
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
