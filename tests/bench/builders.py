"""The builders under test — pybuild, BuildKit (a private dockerd) and buildah — behind one shape,
and the floor: a case's one RUN alone in a plain chroot, timed the same way.

Each builder owns its storage inside the benchmark's temp dir and nothing else: pybuild a store
root, BuildKit a dockerd of the benchmark's own (private_dockerd.py: own data root, exec root
and socket), buildah its own ``--root``/``--runroot``.  ``build()`` returns a ``Built``
(wall-clock seconds and the image ID the tool printed), or raises ``BuildFailed`` with the
tail of the output.  ``close()`` is idempotent and ends only what this builder started.

pybuild is reached through its command line only (an installed console script by default):
nothing here imports the checkout's modules, so the benchmark measures whatever pybuild the
checkout holds, however its insides change.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cases import BASE, DOCKERFILE, Floor
from mounts import remove_tree, unmount_under
from private_dockerd import DaemonFailed, PrivateDockerd

REPO = Path(__file__).resolve().parents[2]
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # docker's default
BUILDAH_HINT = "apt-get install -y buildah"
DOCKER_HINT = "apt-get install -y docker.io"


class BuildFailed(Exception):
    """A build (or a setup command) exited non-zero or timed out."""


class Unavailable(Exception):
    """A builder cannot run here (not installed, daemon does not start); its column is n/a."""


@dataclass
class Finished:
    seconds: float
    returncode: int
    output: str


@dataclass(frozen=True)
class Built:
    """A timed build: wall-clock seconds, and the image ID it printed (its last output line;
    "" for the floor, which makes no image)."""
    seconds: float
    image: str


class ProcessRunner:
    """Runs one command at a time in its own session, so a timeout or Ctrl-C can end exactly
    that command's process group (by its id) and nothing else."""

    def __init__(self) -> None:
        self._current: subprocess.Popen[bytes] | None = None

    def run(self, cmd: list[str], *, timeout: float, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Finished:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        self._current = proc
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_current()
            raise BuildFailed(f"timed out after {timeout:.0f}s: {' '.join(cmd)}") from None
        except BaseException:  # Ctrl-C / SIGTERM: the command is in its own session, end it
            self.kill_current()
            raise
        finally:
            self._current = None
        elapsed = time.perf_counter() - start
        return Finished(elapsed, proc.returncode, out.decode(errors="replace"))

    def kill_current(self) -> None:
        """SIGTERM the running command's process group, SIGKILL it after 10 s."""
        proc = self._current
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def check(self, cmd: list[str], *, timeout: float, what: str, **kw) -> Finished:
        done = self.run(cmd, timeout=timeout, **kw)
        if done.returncode != 0:
            raise BuildFailed(f"{what} failed ({done.returncode}): {' '.join(cmd)}\n"
                              f"{_tail(done.output)}")
        return done


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Builder:
    """The shape every builder has.  ``name`` is the table's tool column."""
    name = "?"
    version = "?"
    makes_image = True  # prints an image ID as its last line (the floor does not)
    runner: ProcessRunner

    def prepare(self, ctx: Path) -> None:
        """Untimed, before each timed build (and before the sync that precedes it)."""

    def build(self, ctx: Path, *, tag: str, no_cache: bool, timeout: float) -> Built:
        cmd, env = self.build_command(ctx, tag=tag, no_cache=no_cache)
        done = self.runner.run(cmd, timeout=timeout, env=env)
        if done.returncode != 0:
            raise BuildFailed(f"{self.name} build exited {done.returncode}\n{_tail(done.output)}")
        lines = done.output.strip().splitlines()
        return Built(done.seconds, lines[-1].strip() if lines else "")

    def build_command(self, ctx: Path, *, tag: str,
                      no_cache: bool) -> tuple[list[str], dict[str, str] | None]:
        raise NotImplementedError

    def forget(self, tags: list[str]) -> None:
        """Drop the images ``tags`` and whatever build cache they hold (between cases; best effort)."""

    def close(self) -> None:
        """End what this builder started and leave its storage removable."""


class Pybuild(Builder):
    """``pybuild --root STORE build …``; a fresh store per case (``reset``).

    By default the checkout is ``pip install``ed into a venv of the benchmark's own and its
    ``pybuild`` console script is timed — what README's set-up gives users (a venv's Python
    starts in ~10 ms; this machine's system python3 runs site start-up hooks for ~40 ms
    more).  ``from_source`` times ``python3 -m builder`` from the checkout instead."""
    name = "pybuild"

    def __init__(self, runner: ProcessRunner, *, workdir: Path, base_tar: Path,
                 python: str = sys.executable, bytecode: bool = True, from_source: bool = False) -> None:
        self.runner = runner
        self.workdir = workdir
        self.base_tar = base_tar
        self.python = python
        self.env = dict(os.environ, PYTHONPATH=str(REPO))
        self.script: str | None = None
        if not from_source:
            venv = workdir / "pybuild-venv"
            self.runner.check([python, "-m", "venv", str(venv)], timeout=300, what="python -m venv")
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
            self.runner.check([str(venv / "bin" / "pip"), "install", "-q", str(REPO)], timeout=600,
                              what="pip install pybuild", env=env)
            self.script = str(venv / "bin" / "pybuild")
            self.env = env
        elif bytecode:
            # An installed pybuild has its .pyc files; a session with PYTHONDONTWRITEBYTECODE=1
            # would compile every module on every build (~55 ms here).  Keep the .pyc files in
            # our temp dir, never in the checkout; the untimed setup commands warm them.
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
        how = "pip-installed console script in a venv" if self.script else "python -m builder"
        self.version = f"{_git_head()}, {how}"
        self._generation = 0
        self.root = self._new_store()

    def command(self, *args: str) -> list[str]:
        if self.script:
            return [self.script, "--root", str(self.root), *args]
        return [self.python, "-m", "builder", "--root", str(self.root), *args]

    def _new_store(self) -> Path:
        self._generation += 1
        root = self.workdir / f"pybuild-store-{self._generation}"
        self.root = root
        self.runner.check(self.command("import", str(self.base_tar), BASE), timeout=300,
                          what="pybuild import", env=self.env)
        return root

    def save_base(self, out: Path) -> Path:
        """The base as a docker-archive, for `docker load` and `buildah pull docker-archive:`."""
        self.runner.check(self.command("save", BASE, "-o", str(out)), timeout=300,
                          what="pybuild save", env=self.env)
        return out

    def build_command(self, ctx, *, tag, no_cache):
        cmd = self.command("build", "-f", str(ctx / DOCKERFILE), "-q", "-t", tag)
        if no_cache:
            cmd.append("--no-cache")
        return cmd + [str(ctx)], self.env

    def forget(self, tags):
        """A new store: the old one (layers, cache) is removed once nothing is mounted in it."""
        old = self.root
        self._new_store()
        remove_tree(old)


class BuildKit(Builder):
    """``DOCKER_BUILDKIT=1 docker -H SOCK build --network none …`` against a private dockerd.

    The docker client must speak BuildKit by itself: docker ≥ 23 clients need the buildx
    plugin for that (this machine's /usr/local/bin/docker, 28.x, has none and refuses), so
    every `docker` on PATH is probed with a one-line build and the first whose output is
    BuildKit's (``#1 [internal] load build definition``, never the classic builder's
    ``Step 1/2``) is used for everything: the timed builds, load, rmi, prune."""
    name = "buildkit"
    MARK = "[internal] load build definition"

    def __init__(self, runner: ProcessRunner, *, base_image_tar: Path) -> None:
        self.runner = runner
        self.daemon: PrivateDockerd | None = None
        dockerd = shutil.which("dockerd")
        clients = _all_on_path("docker")
        if dockerd is None or not clients:
            raise Unavailable(f"docker engine not installed ({DOCKER_HINT})")
        self.daemon = PrivateDockerd(dockerd=dockerd, timeout=90)
        self.env = dict(os.environ, DOCKER_BUILDKIT="1")
        try:
            self.daemon.start(clients)
            self.client = self._pick_client(clients, base_image_tar.parent)
            self.docker("load", "-i", str(base_image_tar))
            server = self.docker("version", "--format", "{{.Server.Version}}").output.strip()
            self.version = f"dockerd {server}, client {self.client} (BuildKit checked)"
        except (DaemonFailed, BuildFailed, Unavailable) as e:
            self.close()
            raise e if isinstance(e, Unavailable) else Unavailable(f"setting up dockerd: {e}")

    @property
    def host(self) -> str:
        assert self.daemon is not None, "dockerd is stopped"
        return self.daemon.host

    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> Finished:
        cmd = [self.client, "-H", self.host, *args]
        if check:
            return self.runner.check(cmd, timeout=timeout, what="docker", env=self.env)
        return self.runner.run(cmd, timeout=timeout, env=self.env)

    def _pick_client(self, clients: list[str], scratch: Path) -> str:
        probe = scratch / "buildkit-probe"
        probe.mkdir(exist_ok=True)
        (probe / DOCKERFILE).write_text("FROM scratch\nLABEL probe=1\n")
        reasons = []
        for client in clients:
            done = self.runner.run([client, "-H", self.host, "build", "--progress", "plain",
                                    "--network", "none", "-t", "bench-probe", str(probe)],
                                   timeout=120, env=self.env)
            if done.returncode == 0 and self.MARK in done.output:
                self.runner.run([client, "-H", self.host, "rmi", "bench-probe"], timeout=60,
                                env=self.env)
                return client
            why = "built, but not with BuildKit" if done.returncode == 0 else "failed"
            reasons.append(f"{client}: {why}: {_tail(done.output, 3)}")
        raise Unavailable("no docker client builds with BuildKit (DOCKER_BUILDKIT=1; "
                          "a docker ≥ 23 client needs the buildx plugin):\n" + "\n".join(reasons))

    def build_command(self, ctx, *, tag, no_cache):
        cmd = [self.client, "-H", self.host, "build", "--network", "none", "-q",
               "-f", str(ctx / DOCKERFILE), "-t", tag]
        if no_cache:
            cmd.append("--no-cache")
        return cmd + [str(ctx)], self.env

    def forget(self, tags):
        for args in (["rmi", "-f", *tags], ["image", "prune", "-f"], ["builder", "prune", "-af"]):
            self.docker(*args, check=False)

    def close(self):
        daemon, self.daemon = self.daemon, None
        if daemon is not None:
            daemon.stop()


class Buildah(Builder):
    """``buildah bud --isolation chroot --layers …`` with its own root and runroot.

    ``--network none`` is refused with chroot isolation ("cannot set --network other than
    host"), so buildah runs with the host network; no case uses the network."""
    name = "buildah"

    def __init__(self, runner: ProcessRunner, *, workdir: Path, base_image_tar: Path,
                 driver: str = "overlay") -> None:
        self.runner = runner
        exe = shutil.which("buildah")
        if exe is None:
            raise Unavailable(f"buildah not installed ({BUILDAH_HINT})")
        self.dir = workdir / "buildah"
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.closed = False
        self.base = [exe, "--root", str(self.dir / "root"), "--runroot", str(self.dir / "run"),
                     "--storage-driver", driver]
        # Big layers are staged in TMPDIR: keep them in our dir, not in /var/tmp.
        self.env = dict(os.environ, TMPDIR=str(self.dir / "tmp"))
        self.driver = driver
        try:
            version = self.runner.check([exe, "--version"], timeout=30, what="buildah --version")
            self.version = f"{version.output.strip()}, storage {driver}"
            pulled = self.runner.check(self.base + ["pull", "-q", f"docker-archive:{base_image_tar}"],
                                       timeout=300, what="buildah pull", env=self.env)
            image_id = pulled.output.strip().splitlines()[-1]
            self.runner.check(self.base + ["tag", image_id, BASE], timeout=60,
                              what="buildah tag", env=self.env)
        except BuildFailed as e:
            self.close()
            raise Unavailable(str(e)) from e

    def build_command(self, ctx, *, tag, no_cache):
        cmd = self.base + ["bud", "--isolation", "chroot", "--layers", "-q",
                           "-f", str(ctx / DOCKERFILE), "-t", tag]
        if no_cache:
            cmd.append("--no-cache")
        return cmd + [str(ctx)], self.env

    def forget(self, tags):
        self.runner.run(self.base + ["rm", "--all"], timeout=120, env=self.env)
        self.runner.run(self.base + ["rmi", "-f", *tags], timeout=300, env=self.env)
        self.runner.run(self.base + ["rmi", "--prune"], timeout=300, env=self.env)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.runner.run(self.base + ["rm", "--all"], timeout=120, env=self.env)
        self.runner.run(self.base + ["umount", "--all"], timeout=120, env=self.env)
        # overlay storage keeps its own mounts (the driver's home); drop them before removal.
        unmount_under(self.dir)


# The floor's one hashing pass: Python's hashlib (OpenSSL's sha256, as pybuild's), not
# coreutils' sha256sum, which does not use the CPU's SHA extensions and is 2-3× slower here
# (0.58 s against 0.27 s for 300 MB): it would put the floor above what a builder that
# hashes well takes.
SHA256_STDIN = ("import hashlib, sys\n"
                "h = hashlib.sha256()\n"
                "while chunk := sys.stdin.buffer.read(1 << 20):\n"
                "    h.update(chunk)\n"
                "print(h.hexdigest())\n")


class ChrootFloor(Builder):
    """The least a builder can take for a case's one RUN: the same command in a plain chroot
    (``chroot ROOT /bin/sh -c CMD``, no namespaces, no overlay, no layer) on a scratch copy of
    the unpacked base, then one pass over what it wrote (``tar -c …`` piped to a sha256 of the
    stream in Python), timed together as one command.  ``prepare`` (untimed) makes the scratch copy afresh; the base's
    /dev holds null, zero, random and urandom nodes, which the builders' sandboxes provide."""
    name = "floor"
    makes_image = False

    def __init__(self, runner: ProcessRunner, *, workdir: Path, base_tar: Path,
                 floor: Floor) -> None:
        self.runner = runner
        self.floor = floor
        self.base = workdir / "floor-base"
        self.scratch = workdir / "floor-scratch"
        self.base.mkdir()
        runner.check(["tar", "-xpf", str(base_tar), "-C", str(self.base)], timeout=120,
                     what="unpack the base for the floor")
        dev = self.base / "dev"
        dev.mkdir(exist_ok=True)
        for node, minor in (("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)):
            if not (dev / node).exists():
                os.mknod(dev / node, 0o20666, os.makedev(1, minor))
        self.version = "chroot, then tar | Python hashlib sha256"

    def prepare(self, ctx):
        remove_tree(self.scratch)
        self.runner.check(["cp", "-a", str(self.base), str(self.scratch)], timeout=300,
                          what="copy the base for the floor")

    def build_command(self, ctx, *, tag, no_cache):
        script = ('root=$1 run=$2 py=$3 hash=$4 && shift 4 && chroot "$root" /bin/sh -c "$run" && '
                  'cd "$root" && tar --numeric-owner -cf - -- "$@" | "$py" -I -c "$hash"')
        return (["bash", "-o", "pipefail", "-c", script, "floor", str(self.scratch),
                 self.floor.command, sys.executable, SHA256_STDIN, *self.floor.outputs],
                {"PATH": CHROOT_PATH})

    def build(self, ctx, *, tag, no_cache, timeout):
        done = super().build(ctx, tag=tag, no_cache=no_cache, timeout=timeout)
        if not re.fullmatch(r"[0-9a-f]{64}", done.image):
            raise BuildFailed(f"floor printed no sha256 (hashing did not run?): {done.image!r}")
        return Built(done.seconds, "")

    def close(self):
        remove_tree(self.scratch)
        remove_tree(self.base)


def _all_on_path(name: str) -> list[str]:
    """Every executable ``name`` on PATH, in PATH order, each real file once."""
    seen, found = set(), []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        exe = os.path.join(d, name)
        real = os.path.realpath(exe)
        if real not in seen and os.path.isfile(exe) and os.access(exe, os.X_OK):
            seen.add(real)
            found.append(exe)
    return found


def _git_head() -> str:
    """The checkout's commit, and whether what pip installs from it (the package, its grammar,
    pyproject.toml) differs from that commit (read-only)."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              timeout=10)
    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "builder", "grammar", "pyproject.toml")
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    if head.returncode != 0:
        return "?"
    state = "with uncommitted changes to the package" if dirty.stdout.strip() else "clean"
    return f"checkout at {head.stdout.strip()} ({state})"

