"""``--ssh`` for ``RUN --mount=type=ssh``: agents and the sockets a RUN sees.

``--ssh default`` forwards the agent at ``$SSH_AUTH_SOCK``; ``--ssh ID=PATH[,PATH…]`` forwards
the agent socket at PATH, or, when the paths are key files, a private ``ssh-agent`` started
for this build holding them (its socket in a 0700 dir of $TMPDIR: a socket path holds only
108 bytes; stopped, by its pid, when the build ends).  A RUN never gets the
upstream socket itself: each ssh mount gets a socket of its own in the step's scratch dir,
owned and moded as the mount says (BuildKit's default 0600 0:0), served by a small forwarding
process that lives only while the step runs.  Nothing of the agent reaches a layer.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.errors import UsageError


@dataclass(frozen=True)
class SshSource:
    """One ``--ssh`` value: an id and its sockets or key files (empty: ``$SSH_AUTH_SOCK``)."""

    id: str
    paths: tuple[str, ...] = ()


def parse_ssh(value: str) -> SshSource:
    """``default``, ``default=$SSH_AUTH_SOCK``, ``ID=PATH[,PATH…]``."""
    ident, eq, rest = value.partition("=")
    if not ident:
        raise UsageError(f"--ssh {value!r}: no id (use --ssh default or --ssh ID=/path/to/socket-or-key)")
    return SshSource(ident, tuple(p for p in rest.split(",") if p) if eq else ())


class SshAgents:
    """The upstream agent socket of every ``--ssh`` id of one build, agents started lazily."""

    def __init__(self, sources: tuple[SshSource, ...], scratch: Path) -> None:
        self.sources = {s.id: s for s in sources}
        self.scratch = scratch
        self._sockets: dict[str, str] = {}
        self._agents: list[subprocess.Popen[bytes]] = []
        self._agent_dir: str | None = None      # short (a socket path holds 108 bytes), 0700

    def socket_of(self, ident: str) -> str | None:
        """The upstream socket for ``ident``; None when the build was given no such --ssh."""
        if ident in self._sockets:
            return self._sockets[ident]
        source = self.sources.get(ident)
        if source is None:
            return None
        paths = source.paths or ((os.environ.get("SSH_AUTH_SOCK") or ""),)
        if not paths[0]:
            raise UsageError(f"--ssh {ident}: $SSH_AUTH_SOCK is not set (start ssh-agent, or give a path)")
        if all(_is_socket(p) for p in paths):
            sock = paths[0]
        else:
            sock = self._start_agent(ident, paths)
        self._sockets[ident] = sock
        return sock

    def _start_agent(self, ident: str, keys: tuple[str, ...]) -> str:
        if self._agent_dir is None:
            self._agent_dir = tempfile.mkdtemp(prefix="pybuild-ssh-")
        sock = os.path.join(self._agent_dir, f"agent-{len(self._agents)}.sock")
        try:
            agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except FileNotFoundError:
            raise UsageError(f"--ssh {ident}: ssh-agent is not installed (it holds the keys for the build)") from None
        self._agents.append(agent)
        deadline = time.monotonic() + 10
        while not _is_socket(sock):
            if agent.poll() is not None or time.monotonic() > deadline:
                raise UsageError(f"--ssh {ident}: ssh-agent did not start")
            time.sleep(0.02)
        for key in keys:
            added = subprocess.run(["ssh-add", "-q", key], env={**os.environ, "SSH_AUTH_SOCK": sock},
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if added.returncode != 0:
                raise UsageError(f"--ssh {ident}: {key} is neither an agent socket nor a key ssh-add takes: "
                                 f"{added.stderr.strip()}")
        return sock

    def close(self) -> None:
        """Stop the agents this build started (by pid)."""
        for agent in self._agents:
            agent.kill()
            agent.wait()
        self._agents.clear()
        if self._agent_dir is not None:
            shutil.rmtree(self._agent_dir, ignore_errors=True)
            self._agent_dir = None


@contextlib.contextmanager
def forward(upstream: str, listen: Path, *, mode: int, uid: int, gid: int) -> Iterator[None]:
    """Serve ``listen`` (a new socket, ``mode``/``uid``/``gid``) by forwarding every
    connection to ``upstream``, in a child process that lives for the block."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _bind(server, listen)
    os.chown(listen, uid, gid)
    os.chmod(listen, mode)
    server.listen(16)
    pid = os.fork()
    if pid == 0:                                          # the forwarder
        code = 0
        try:
            _serve(server, upstream)
        except BaseException:
            code = 1
        os._exit(code)
    server.close()
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _bind(server: socket.socket, path: Path) -> None:
    """Bind ``path`` whatever its length: a unix socket address holds 108 bytes, a store
    under a deep --root gives longer step dirs, so the directory is named by an fd."""
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        server.bind(f"/proc/self/fd/{fd}/{path.name}")
    finally:
        os.close(fd)


def _serve(server: socket.socket, upstream: str) -> None:
    peers: dict[socket.socket, socket.socket] = {}
    while True:
        readable, _, _ = select.select([server, *peers], [], [])
        for s in readable:
            if s is server:
                client, _ = server.accept()
                agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    agent.connect(upstream)
                except OSError:
                    client.close()
                    continue
                peers[client], peers[agent] = agent, client
                continue
            data = b""
            with contextlib.suppress(OSError):
                data = s.recv(65536)
            other = peers.get(s)
            if not data or other is None:
                for end in (s, other):
                    if end is not None:
                        peers.pop(end, None)
                        end.close()
                continue
            with contextlib.suppress(OSError):
                other.sendall(data)


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
