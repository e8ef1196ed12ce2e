"""A private reference registry for tests: Debian's ``docker-registry`` (distribution 2.8)
serving on 127.0.0.1:<free port> with a config, storage and log of its own; stopped by the
pid it was started with.  Nothing here listens on or talks to another address."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests
from dockerd import require_tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """``docker-registry serve`` on 127.0.0.1:<free port>, storage and log under ``dir``."""

    def __init__(self, dir: Path, *, htpasswd: Path | None = None) -> None:
        self.binary = require_tool("docker-registry")
        self.dir = dir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.data = dir / "data"
        auth = f"auth:\n  htpasswd: {{realm: test-realm, path: {htpasswd}}}\n" if htpasswd else ""
        self.config = dir / "config.yml"
        self.config.write_text(
            "version: 0.1\nlog: {level: info}\n"
            f"storage:\n  filesystem: {{rootdirectory: {self.data}}}\n  delete: {{enabled: true}}\n"
            f"http:\n  addr: {self.host}\n  secret: pybuild-test-secret\n" + auth)
        self.log = dir / "registry.log"
        self._proc: subprocess.Popen | None = None

    def start(self) -> Registry:
        with open(self.log, "wb") as log:
            self._proc = subprocess.Popen([self.binary, "serve", str(self.config)], stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited:\n{self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/v2/", timeout=2).status_code in (200, 401):
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def blob_file(self, digest: str) -> Path:
        hexd = digest[7:]
        return self.data / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
