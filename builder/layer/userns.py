"""Builds as an ordinary user: the pybuild process enters a user namespace of its own.

``enter()`` is called once, before the store is opened, when pybuild does not run as root.  The
whole process then lives in the namespace, as podman and buildah do (``buildah unshare``):
container root is the user, container ids 1…65536 are the user's subordinate ids (idmap.py),
and the kernel maps every id both ways.  So unpacking a layer chowns to the container ids it
names (stored on disk as the subordinate host ids), capturing one reads the container ids back
(host uid of the user → 0, subordinate base+n-1 → n), and files owned by any mapped id can be
read: capture and unpack need no code of their own for ownership, and a layer built rootless is
byte for byte the layer root builds.

What the namespace cannot do, real root can: make device nodes, own files as ids outside the
mapping, and (with a single-id mapping) own files as anything but 0.  Those fail, and the
error says why (``denied_hint``).  Overlay mounts in the namespace use ``userxattr`` (overlay.py)
and opaque directories are marked ``user.overlay.opaque`` (whiteout.py); whiteouts are 0:0
char devices, which the kernel lets anyone create (Linux 5.8 and later).

The mapping is written by shadow's setuid ``newuidmap``/``newgidmap`` when the user has
subordinate ids; otherwise (or when those tools are missing or refuse) the process writes the
one-id mapping itself, which needs no privilege.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import pwd
import shutil
import subprocess

from builder.errors import SandboxError
from builder.layer import idmap
from builder.layer.idmap import Mapping

CLONE_NEWUSER = 0x10000000
SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
_libc = ctypes.CDLL(None, use_errno=True)

_entered: Mapping | None = None


@functools.lru_cache(maxsize=1)
def in_user_namespace() -> bool:
    """True when this process runs in a user namespace other than the initial one (pybuild
    entered one to build rootless, or was started inside one, e.g. in a rootless container)."""
    try:
        with open("/proc/self/uid_map") as f:
            return not idmap.parse_proc_map(f.read()).identity
    except OSError:
        return False


def entered() -> Mapping | None:
    """The mapping ``enter()`` made in this process, or None."""
    return _entered


def planned_mapping(uid: int | None = None, gid: int | None = None) -> Mapping:
    """The mapping ``enter()`` would make for this user: the subordinate ids when the user has
    them and newuidmap/newgidmap are installed, else a single id with the reason."""
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    mapping = idmap.mapping_for(uid, gid, idmap.parse_subordinate(_read(SUBUID), user=name, uid=uid),
                                idmap.parse_subordinate(_read(SUBGID), user=name, uid=uid))
    if mapping.subordinate and not (shutil.which("newuidmap") and shutil.which("newgidmap")):
        return idmap.single(uid, gid, "newuidmap/newgidmap are not installed (apt-get install uidmap)")
    return mapping


def enter() -> Mapping:
    """Move this process into a new user namespace where it is root (idempotent).

    Must be called while the process has one thread (before anything starts one).  Raises
    SandboxError when the kernel refuses an unprivileged user namespace."""
    global _entered
    if _entered is not None:
        return _entered
    planned = planned_mapping()
    helper = _start_mapper() if planned.subordinate else None
    if _libc.unshare(CLONE_NEWUSER) != 0:
        err = ctypes.get_errno()
        if helper is not None:
            _finish_mapper(helper, go=False)
        raise SandboxError(f"cannot create a user namespace for a build as an ordinary user: "
                           f"unshare: {os.strerror(err)} (run pybuild as root, or allow unprivileged "
                           f"user namespaces: sysctl user.max_user_namespaces, "
                           f"kernel.apparmor_restrict_unprivileged_userns=0)")
    mapping = planned
    if helper is not None:
        failure = _finish_mapper(helper, go=True, mapping=planned)
        if failure:
            mapping = idmap.single(planned.uids.ranges[0].host, planned.gids.ranges[0].host, failure)
    if not mapping.subordinate:
        _write_own_maps(mapping)
    in_user_namespace.cache_clear()
    _entered = mapping
    return mapping


def single_id_note() -> str:
    """One line for a build that runs with a single-id mapping ("" otherwise)."""
    m = _entered
    if m is None or m.subordinate:
        return ""
    return (f"rootless with one id only, as {m.note}: files can be owned by root alone, so chown "
            f"to another id, USER with another id and images with other owners fail")


def user_mapping() -> str:
    """How ids are mapped here, for people (``pybuild info``)."""
    if _entered is not None:
        how = "subordinate ids, through newuidmap/newgidmap" if _entered.subordinate else _entered.note
        return f"rootless: {_entered.describe()} ({how})"
    if in_user_namespace():
        uids, gids = (idmap.parse_proc_map(_read(f"/proc/self/{k}_map")) for k in ("uid", "gid"))
        return f"started in a user namespace: uids {uids.describe()}; gids {gids.describe()}"
    if os.geteuid() == 0:
        return "root: no user namespace, ids are the host's"
    planned = planned_mapping()
    how = "subordinate ids, through newuidmap/newgidmap" if planned.subordinate else planned.note
    return f"rootless (when a command opens the store): {planned.describe()} ({how})"


def gid_mapped(gid: int) -> bool:
    """Whether group ``gid`` exists in this process's user namespace (always, outside one)."""
    if not in_user_namespace():
        return True
    return idmap.parse_proc_map(_read("/proc/self/gid_map")).to_host(gid) is not None


def can_setgroups() -> bool:
    """False where /proc/self/setgroups says ``deny`` (a single-id mapping written by us)."""
    return _read("/proc/self/setgroups").strip() != "deny"


def set_groups(groups: list[int]) -> None:
    """setgroups(2) for a RUN's user.  Where setgroups is denied (a single-id mapping: no other
    group exists there anyway) the process keeps the groups it has, which it cannot change."""
    if can_setgroups():
        os.setgroups(groups)


def denied_hint(e: OSError, *, owner: tuple[int, int] | None = None, device: bool = False) -> str:
    """`` (…)``: why the namespace refused ``e`` (making a device node, an owner outside the
    mapping), to append to an error message; "" outside a user namespace or for other errors."""
    if not in_user_namespace():
        return ""
    if device and e.errno in (errno.EPERM, errno.EACCES):
        return " (pybuild runs in a user namespace: making a device node needs real root)"
    if owner is not None and e.errno == errno.EINVAL:
        return (f" (pybuild runs in a user namespace: owner {owner[0]}:{owner[1]} is outside the ids "
                f"mapped for this user, {_mapped_span()}; this needs real root)")
    return ""


def run_failure_hint(output_tail: bytes) -> str:
    """`` (…)`` for a RUN that failed in a user namespace with an error the namespace may have
    caused (EPERM, EINVAL in its last output); "" otherwise."""
    if not in_user_namespace() or not any(m in output_tail for m in (b"Operation not permitted",
                                                                      b"Invalid argument")):
        return ""
    return (" (pybuild runs in a user namespace: making device nodes and owning files as ids "
            f"outside the mapping, {_mapped_span()}, need real root)")


def _mapped_span() -> str:
    m = _entered
    if m is None:
        return "see `pybuild info`"
    return f"container ids 0–{m.uids.size - 1}" if m.uids.size > 1 else "container id 0 only"


# -- the mapping helper --------------------------------------------------------------------
def _start_mapper() -> tuple[int, int, int]:
    """Fork the child that will run newuidmap/newgidmap on us once we have unshared: it must
    stay in the initial namespace, so it is forked first.  Returns (pid, go fd, report fd)."""
    go_r, go_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(go_w)
            os.close(rep_r)
            order = b""
            while chunk := os.read(go_r, 4096):       # until the parent closes its end
                order += chunk
            if order.startswith(b"map "):
                args = order[4:].decode().split("|")
                code = _run_mappers(os.getppid(), args, rep_w)
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(rep_w)
    return pid, go_w, rep_r


def _run_mappers(target: int, args: list[str], report: int) -> int:
    for tool, triples in zip(("newuidmap", "newgidmap"), args):
        proc = subprocess.run([tool, str(target), *triples.split()], capture_output=True, text=True)
        if proc.returncode != 0:
            os.write(report, f"{tool} failed: {(proc.stderr or proc.stdout).strip()}".encode()[:4000])
            return 1
    return 0


def _finish_mapper(helper: tuple[int, int, int], *, go: bool, mapping: Mapping | None = None) -> str:
    """Tell the helper to map us (or to stop), wait for it; "" on success, else what failed."""
    pid, go_w, rep_r = helper
    try:
        if go and mapping is not None:
            order = "map " + "|".join(" ".join(m.args()) for m in (mapping.uids, mapping.gids))
            os.write(go_w, order.encode())
    finally:
        os.close(go_w)
    with os.fdopen(rep_r, "rb") as f:
        report = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if not go or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        return ""
    return report or "newuidmap/newgidmap failed"


def _write_own_maps(mapping: Mapping) -> None:
    """The single-id mapping, written by the process itself (setgroups must be denied first)."""
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", mapping.uids.text())
        _write("/proc/self/gid_map", mapping.gids.text())
    except OSError as e:
        raise SandboxError(f"map ids in the user namespace: {e.strerror}") from e


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
