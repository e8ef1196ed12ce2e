"""The builders under test — pybuild, BuildKit (a private dockerd) and buildah — behind one shape.

Each builder owns its storage inside the benchmark's temp dir and nothing else: pybuild a store
root, BuildKit a dockerd started by tests/dockerd.py (own data root, exec root and socket),
buildah its own ``--root``/``--runroot``.  ``build()`` returns wall-clock seconds, or raises
``BuildFailed`` with the tail of the output.  ``close()`` is idempotent and ends only what
this builder started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cases import BASE, DOCKERFILE

REPO = Path(__file__).resolve().parents[2]
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

    def build(self, ctx: Path, *, tag: str, no_cache: bool, timeout: float) -> float:
        cmd, env = self.build_command(ctx, tag=tag, no_cache=no_cache)
        done = self.runner.run(cmd, timeout=timeout, env=env)
        if done.returncode != 0:
            raise BuildFailed(f"{self.name} build exited {done.returncode}\n{_tail(done.output)}")
        return done.seconds

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
        self.version = _git_head()
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
    plugin for that, so every `docker` on PATH is probed and the first that builds is used."""
    name = "buildkit"

    def __init__(self, runner: ProcessRunner, *, base_image_tar: Path) -> None:
        self.runner = runner
        if shutil.which("dockerd") is None or shutil.which("docker") is None:
            raise Unavailable(f"docker engine not installed ({DOCKER_HINT})")
        sys.path.insert(0, str(REPO / "tests"))
        sys.path.insert(0, str(REPO))
        try:
            from dockerd import DockerDaemon
        except Exception as e:  # the checkout is being edited: say so, do not crash the run
            raise Unavailable(f"cannot import tests/dockerd.py: {e}") from e
        self.daemon = DockerDaemon(timeout=90)
        try:
            self.daemon.start()
        except Exception as e:
            raise Unavailable(f"private dockerd did not start: {e}") from e
        self.env = dict(os.environ, DOCKER_BUILDKIT="1")
        try:
            self.daemon.run("load", "-i", str(base_image_tar))
            self.client = self._pick_client(base_image_tar.parent)
            server = self.daemon.run("version", "--format", "{{.Server.Version}}").stdout.strip()
            self.version = f"dockerd {server}, client {self.client}"
        except Exception as e:
            self.close()
            raise e if isinstance(e, Unavailable) else Unavailable(f"setting up dockerd: {e}")

    def _pick_client(self, scratch: Path) -> str:
        probe = scratch / "buildkit-probe"
        probe.mkdir(exist_ok=True)
        (probe / DOCKERFILE).write_text(f"FROM {BASE}\nRUN true\n")
        seen, reasons = set(), []
        for d in os.environ.get("PATH", "").split(os.pathsep):
            client = os.path.join(d, "docker")
            real = os.path.realpath(client)
            if real in seen or not os.access(client, os.X_OK):
                continue
            seen.add(real)
            done = self.runner.run([client, "-H", self.daemon.host, "build", "--network", "none",
                                    "-q", "-t", "bench-probe", str(probe)],
                                   timeout=120, env=self.env)
            if done.returncode == 0:
                return client
            reasons.append(f"{client}: {_tail(done.output, 3)}")
        raise Unavailable("no docker client builds with DOCKER_BUILDKIT=1 "
                          "(a docker ≥ 23 client needs the buildx plugin):\n" + "\n".join(reasons))

    def build_command(self, ctx, *, tag, no_cache):
        cmd = [self.client, "-H", self.daemon.host, "build", "--network", "none", "-q",
               "-f", str(ctx / DOCKERFILE), "-t", tag]
        if no_cache:
            cmd.append("--no-cache")
        return cmd + [str(ctx)], self.env

    def forget(self, tags):
        for args in (["rmi", "-f", *tags], ["image", "prune", "-f"], ["builder", "prune", "-af"]):
            self.daemon.run(*args, check=False, timeout=300)

    def close(self):
        daemon = getattr(self, "daemon", None)
        if daemon is not None:
            self.daemon = None
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
        if getattr(self, "base", None) is None:
            return
        base, self.base = self.base, None
        self.runner.run(base + ["rm", "--all"], timeout=120, env=self.env)
        self.runner.run(base + ["umount", "--all"], timeout=120, env=self.env)
        # overlay storage keeps its own mounts (the driver's home); drop them before removal.
        for point in mounts_under(self.dir):
            subprocess.run(["umount", "-l", point], capture_output=True)


def _git_head() -> str:
    """The checkout's commit (read-only; the working tree may differ from it)."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        return f"checkout at {out.stdout.strip()} (+ working tree)" if out.returncode == 0 else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root`` (from /proc/self/mountinfo), deepest first."""
    prefix = os.path.abspath(root)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """Unmount whatever is left below ``path``, then remove it — but never while something
    is still mounted there (rmtree would reach into the mounted file system)."""
    if not path.exists():
        return
    for point in mounts_under(path):
        subprocess.run(["umount", "-l", point], capture_output=True)
    left = mounts_under(path)
    if left:
        print(f"bench: not removing {path}: still mounted: {', '.join(left)}", file=sys.stderr)
        return
    shutil.rmtree(path, ignore_errors=True)
