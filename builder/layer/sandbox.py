"""Running things over an overlay union without leaving anything behind.

Everything happens in a forked child that first enters new mount, pid, uts and ipc
namespaces; the command itself is confined as docker confines a container (layer/confine.py:
pivot_root with the old root detached, docker's capabilities and seccomp profile, masked /proc,
every mount of the root ``nodev``).  The overlay and the sandbox mounts (/proc, a minimal
/dev, read-only /sys, private copies of the host's resolv.conf and hosts) exist only in that
mount namespace, so they vanish with it — after a normal exit, a failed command, Ctrl-C or a SIGKILL of pybuild
(both children carry PR_SET_PDEATHSIG).  The host never sees one of these mounts.

Mount points must not leak into the layer either: they come from an *init layer*, a lower
directory just above the image (docker's ``-init`` layer), whose directories copy the image's
own metadata, so a RUN that writes into /etc copies up /etc exactly as it is in the image.

``run`` confines and execs a command (RUN); ``call_in_root`` runs a Python function on the
merged dir (ADD, COPY, WORKDIR).  Both return only after every mount is gone.  A child reports
back one pickled ``Outcome``: a PybuildError it raised is raised again in the parent as the
same object (same type, same attributes); anything else is an internal error.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import secrets
import signal
import stat
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder import errors
from builder.layer import confine, devfs, hostbinds, overlay, rootmount, runmounts
from builder.layer.confine import Confinement
from builder.layer.overlay import MNT_DETACH, MS_BIND
from builder.layer.rootmount import RootMount
from builder.layer.runmounts import RunMount
from builder.layer.stack import LayerStack

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)

#: Placeholders in the init layer: mount points for the sandbox, never part of a layer.
INIT_DIRS = ("dev", "proc", "sys", "etc")
INIT_FILES = ("etc/resolv.conf", "etc/hosts", "etc/hostname")


@dataclass(frozen=True)
class Outcome:
    """What a child sends back through its pipe, pickled.

    ``error`` None: the call returned ``value``.  Otherwise ``error`` is the PybuildError it
    raised, re-raised as is by the parent.  ``internal`` is the type name of anything else it
    raised (a bug) and ``trace`` the child's traceback of it; ``error`` is then None."""

    value: Any = None
    error: errors.PybuildError | None = None
    internal: str = ""
    trace: str = ""

    def result(self) -> Any:
        """``value``, or raise what the child raised (internal errors as RuntimeError)."""
        if self.error is not None:
            raise self.error
        if self.internal:
            raise RuntimeError(f"internal error in sandbox helper ({self.internal}):\n{self.trace}")
        return self.value


def _pickled(outcome: Outcome) -> bytes:
    """``outcome`` pickled; an outcome that does not pickle becomes an internal error."""
    try:
        return pickle.dumps(outcome)
    except Exception as e:
        what = "result" if outcome.error is None else f"{type(outcome.error).__name__}"
        return pickle.dumps(Outcome(internal="PicklingError", trace=f"{what} does not pickle: {e!r}"))


@dataclass(frozen=True)
class RunSpec:
    """What to execute inside the root."""

    argv: tuple[str, ...]
    env: tuple[str, ...]           # "K=V", as in the image config
    workdir: str = "/"
    user: str = ""                 # "", "uid", "uid:gid", "name", "name:group" (image's passwd)
    hostname: str = ""
    mounts: tuple[RunMount, ...] = ()   # RUN --mount, prepared on the host (layer/runmounts.py)
    network: str = "default"       # "none": a network namespace of its own, loopback only


def make_init_layer(path: Path, stack: LayerStack, files: dict[str, bytes]) -> None:
    """Create the init layer at ``path``: mount-point dirs mirroring the image's metadata
    (mode, owner, mtime), and the placeholder files whose content ``files`` supplies for the
    bind-mounted copies (they are written beside, in ``path.parent``)."""
    path.mkdir(mode=0o755)
    for rel in INIT_DIRS:
        st = stack.lookup(rel)
        d = path / rel
        if st is not None and stat.S_ISDIR(st.st_mode):
            d.mkdir()
            os.chown(d, st.st_uid, st.st_gid)
            os.chmod(d, stat.S_IMODE(st.st_mode))
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:
            d.mkdir(mode=0o755)
    for rel in INIT_FILES:
        (path / rel).touch(mode=0o644)
    write_init_files(path.parent, files)
    st = stack.lookup("etc")
    if st is not None:                      # touching files above changed etc's mtime
        os.utime(path / "etc", ns=(st.st_atime_ns, st.st_mtime_ns))


def write_init_files(files_dir: Path, files: dict[str, bytes]) -> None:
    """The private copies the sandbox binds on the INIT_FILES, written into ``files_dir`` (the
    ``files_dir`` of ``run``); ``files`` gives their content (missing: empty)."""
    for rel in INIT_FILES:
        (files_dir / rel.replace("/", "_")).write_bytes(files.get(rel, b""))


def host_files() -> dict[str, bytes]:
    """The host's resolv.conf and hosts, for private copies inside the sandbox."""
    files = {}
    for rel in ("etc/resolv.conf", "etc/hosts"):
        try:
            files[rel] = Path("/" + rel).read_bytes()
        except OSError:
            files[rel] = b""
    return files


def run(mount: RootMount, spec: RunSpec, on_output: Callable[[bytes], None] | None, *,
        files_dir: Path) -> int:
    """Run ``spec`` confined in the union; stream its output (stdout and stderr merged) to
    ``on_output`` — or, when it is None, let the command use pybuild's own stdin, stdout and
    stderr (``pybuild run``); return its exit status (128+N if killed by signal N).
    ``files_dir`` holds the private resolv.conf/hosts/hostname that ``make_init_layer`` wrote."""
    out_r, out_w = os.pipe() if on_output is not None else (-1, -1)
    ctl_r, ctl_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                          # child: namespaces + mounts
        if out_r >= 0:
            os.close(out_r)
        os.close(ctl_r)
        _child_run(mount, spec, str(files_dir), out_w, ctl_w)  # never returns
    if out_w >= 0:
        os.close(out_w)
    os.close(ctl_w)
    try:
        if on_output is not None:
            with os.fdopen(out_r, "rb", buffering=0) as out:
                while chunk := out.read(65536):
                    on_output(chunk)
        status = _wait(pid)
        report = _read_all(ctl_r)
    except BaseException:
        _kill_all(pid, ctl_r)
        raise
    _, outcome = _parse_report(report)
    if outcome is not None:
        outcome.result()
    return status


def call_in_root(mount: RootMount, fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(merged_dir, *args)`` in a child with the union mounted on ``mount.target``.

    Returns what ``fn`` returned (it must pickle).  A PybuildError raised by ``fn`` (or while
    mounting) is raised here again: the same type with the same attributes.  Anything else
    becomes a RuntimeError "internal error in sandbox helper" carrying the child's traceback."""
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(res_r)
        code = 0
        try:
            os.setpgid(0, 0)
            _enter_namespaces(CLONE_NEWNS)
            rootmount.mount_root(mount)
            try:
                outcome = Outcome(value=fn(Path(mount.target), *args))
            finally:
                overlay.umount(mount.target)
        except errors.PybuildError as e:
            outcome, code = Outcome(error=e), 1
        except BaseException as e:
            outcome, code = Outcome(internal=type(e).__name__, trace=traceback.format_exc()), 2
        with os.fdopen(res_w, "wb") as f:
            f.write(_pickled(outcome))
        os._exit(code)
    os.close(res_w)
    try:
        data = _read_all(res_r)
        _wait(pid)
    except BaseException:
        _kill_all(pid, None)
        raise
    if not data:
        raise errors.SandboxError("the helper process died without a result")
    outcome = pickle.loads(data)
    assert isinstance(outcome, Outcome), f"internal error: sandbox helper sent {outcome!r}"
    return outcome.result()


# -- inside the children ------------------------------------------------------------------
def _enter_namespaces(flags: int) -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise errors.SandboxError(f"unshare: {os.strerror(err)} (pybuild must run as root)")
    overlay.make_mounts_private()


def _child_run(mount: RootMount, spec: RunSpec, files_dir: str, out_w: int, ctl_w: int) -> None:
    code = 125
    try:
        if out_w >= 0:              # a build: Ctrl-C goes to pybuild, which kills us explicitly
            os.setpgid(0, 0)
        isolated = spec.network == "none"
        confinement = confine.prepare(spec.network)     # caps and seccomp filter, before any mount
        _enter_namespaces(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | (CLONE_NEWNET if isolated else 0))
        if isolated:
            runmounts.loopback_up()
        rootmount.mount_root(mount)
        merged = os.path.abspath(mount.target)
        hostname = spec.hostname or secrets.token_hex(6)
        _libc.sethostname(hostname.encode(), len(hostname.encode()))
        _mount_sandbox(merged, files_dir)
        stubs = runmounts.mount_all(merged, spec.mounts, _work_dir(files_dir)) if spec.mounts else []
        confine.seal_devices(merged)                # every mount of the root nodev, /dev's aside
        inner = os.fork()
        if inner == 0:
            os.close(ctl_w)
            _exec_inner(merged, spec, out_w, confinement)        # never returns
        if out_w >= 0:
            os.close(out_w)
        os.write(ctl_w, f"pid {inner}\n".encode())
        code = _wait(inner)
        hostbinds.unmount_sys(f"{merged}/sys")
        for point in overlay.mounts_under(merged):
            if point != merged:
                overlay.umount(point, MNT_DETACH)
        runmounts.remove_stubs(merged, stubs)
        overlay.umount(merged)
    except BaseException as e:
        error = e if isinstance(e, errors.PybuildError) else errors.SandboxError(f"internal error: {e!r}")
        try:
            _write_all(ctl_w, _ERROR_MARK + _pickled(Outcome(error=error)))
        except OSError:
            pass
    os._exit(code)


# The control pipe of ``run``: ``pid <n>\n`` once the command runs, then, if setting up or
# tearing down failed, ``error\n`` followed by a pickled Outcome up to the end of the pipe.
_ERROR_MARK = b"error\n"


def _work_dir(files_dir: str) -> str:
    """A dir of the step for what RUN mounts need beside the root (image unions, secrets)."""
    work = os.path.join(files_dir, "mounts")
    os.makedirs(work, mode=0o700, exist_ok=True)
    return work


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _parse_report(data: bytes) -> tuple[int | None, Outcome | None]:
    """(pid of the command, if it was reported; the error Outcome, if one was sent)."""
    head, mark, tail = data.partition(_ERROR_MARK)
    pid = None
    for line in head.splitlines():
        if line.startswith(b"pid "):
            pid = int(line[4:])
    if not mark:
        return pid, None
    try:
        outcome = pickle.loads(tail)
    except Exception as e:
        return pid, Outcome(error=errors.SandboxError(f"internal error: unreadable sandbox report: {e!r}"))
    return pid, outcome


def _mount_sandbox(merged: str, files_dir: str) -> None:
    devfs.mount_dev(merged)
    hostbinds.mount_sys(f"{merged}/sys")
    for rel in INIT_FILES:
        src = os.path.join(files_dir, rel.replace("/", "_"))
        overlay.mount(src, f"{merged}/{rel}", None, MS_BIND)


def _exec_inner(merged: str, spec: RunSpec, out_w: int, confinement: Confinement) -> None:
    """PID 1 of the new pid namespace: mount /proc, pivot_root, drop to the user, exec."""
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        confine.enter_root(merged)              # own mount namespace, /proc, pivot_root
        if out_w >= 0:                          # a build step: no stdin, output to the pipe
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            for fd in (null, out_w):
                if fd > 2:
                    os.close(fd)
        env = dict(item.partition("=")[::2] for item in spec.env)
        uid, gid, groups, home = _resolve_user(spec.user)
        env.setdefault("HOME", home)
        try:
            os.chdir(spec.workdir or "/")
        except OSError as e:
            raise errors.SandboxError(f"cannot enter working directory {spec.workdir}: {e.strerror}") from e
        confine.drop_to(confinement, uid=uid, gid=gid, groups=groups)    # caps, seccomp, user
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.execvpe(spec.argv[0], list(spec.argv), env)
    except FileNotFoundError:
        sys.stderr.write(f"exec: {spec.argv[0]}: not found\n")
        os._exit(127)
    except BaseException as e:
        sys.stderr.write(f"pybuild sandbox: {e}\n")
        os._exit(126)


def _resolve_user(user: str) -> tuple[int, int, list[int], str]:
    """uid, gid, supplementary groups and home for USER, read from the root's own
    /etc/passwd and /etc/group (never the host's NSS).  The supplementary groups are, as in a
    docker container, the primary gid and — unless USER names a group — every group that
    lists the user."""
    name, _, group = (user or "0").partition(":")
    passwd = _read_db("/etc/passwd")
    entry = next((e for e in passwd if e[0] == name or (name.isdigit() and e[2] == name)), None)
    if name.isdigit():
        uid = int(name)
    elif entry is None:
        raise errors.SandboxError(f"unable to find user {name}: no matching entries in passwd file")
    else:
        uid = int(entry[2])
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    home = entry[5] if entry is not None and len(entry) > 5 and entry[5] else "/"
    groups_db = _read_db("/etc/group")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((e for e in groups_db if e[0] == group), None)
            if g is None:
                raise errors.SandboxError(f"unable to find group {group}: no matching entries in group file")
            gid = int(g[2])
        return uid, gid, [gid], home
    login = entry[0] if entry is not None else None
    supplementary = sorted({gid} | {int(e[2]) for e in groups_db
                                    if login and len(e) > 3 and login in e[3].split(",") and e[2].isdigit()})
    return uid, gid, supplementary, home


def _read_db(path: str) -> list[list[str]]:
    """The entries of a passwd or group file; lines with fewer than 4 fields are not entries
    (a RUN --mount may put any file on /etc/passwd, and the step must still run)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            entries = [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []
    return [e for e in entries if len(e) >= 4]


# -- parent-side helpers ------------------------------------------------------------------
def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _kill_all(pid: int, ctl_r: int | None) -> None:
    """Stop the children now (Ctrl-C, or an error while streaming) and reap them."""
    inner = None
    if ctl_r is not None:
        try:
            os.set_blocking(ctl_r, False)
            inner, _ = _parse_report(os.read(ctl_r, 65536).partition(_ERROR_MARK)[0])
        except OSError:
            pass
    for target in (inner, pid):
        if target:
            try:
                os.kill(target, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
