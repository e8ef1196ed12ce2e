"""An ordinary user to build as: the rootless tests' user, made by the suite itself.

CI runs the suite as root on a fresh machine, so the user is made here when it is missing:
``pybuild-ci``, with no login and no home of its own, and a range of 65536 subordinate uids and
gids in /etc/subuid and /etc/subgid (the range starts above every range already listed).  It
is removed at the end of the session, with its ranges, if this session made it; a user of that
name that was already there is used as it is and left alone.  Everything the user builds lives
in one directory of its own under /tmp (its HOME; the stores, the contexts), removed at the end.

pybuild runs as that user through ``subprocess`` with ``user=``/``group=`` (no setuid tool,
no login), from an interpreter the user may run: the one running the tests when the user can
execute it, else the system's python3 of the same version with this venv's site-packages on
PYTHONPATH (a venv made from a python under /root, as pyenv's is, cannot be run by anyone else).
The checkout itself must be readable by other users.  Needs ``useradd``/``userdel``/``usermod``
(passwd) and ``newuidmap``/``newgidmap`` (uidmap; .ci/install installs both).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
USER = "pybuild-ci"
SUB_COUNT = 65536
#: Subordinate ranges start at or above this (useradd's own default is 100000).
SUB_MIN = 200000
IMPORT_CHECK = "import builder.cli, lark, yaml, requests, tqdm, zstandard"


@dataclass
class RootlessUser:
    """The user, where it may write (``home``), and how to run pybuild as it."""

    name: str
    uid: int
    gid: int
    home: Path
    python: list[str]
    pythonpath: str
    made: bool = False
    subids: tuple[int, int] | None = None            # the range this session added, if any
    env_extra: dict[str, str] = field(default_factory=dict)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment: nothing of root's (no XDG_*, no HOME) but PATH and what is given."""
        return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": str(self.home),
                "PYTHONPATH": self.pythonpath, "PYBUILD_PULL": "never", "LANG": "C.UTF-8",
                **self.env_extra, **(extra or {})}

    def run(self, *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
        """``argv`` as the user (no supplementary groups), in ``cwd`` (default its home)."""
        proc = subprocess.run(list(argv), user=self.uid, group=self.gid, extra_groups=[], env=self.env(env),
                              cwd=cwd or self.home, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} as {self.name} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def pybuild(self, *args: str, root: Path | None = None, env: dict[str, str] | None = None,
                check: bool = True) -> subprocess.CompletedProcess:
        """`python -m builder [--root ROOT] ARGS…` as the user (its default store without ``root``)."""
        rootargs = ("--root", str(root)) if root is not None else ()
        return self.run(*self.python, "-m", "builder", *rootargs, *args, env=env, check=check)

    def own(self, path: Path) -> Path:
        """Give ``path`` (and everything below it) to the user; returns it."""
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)
        return path

    def copy_in(self, src: Path, name: str) -> Path:
        """A copy of file or tree ``src`` in the user's home, owned by the user."""
        dst = self.home / name
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst)
        return self.own(dst)


def _subordinate_ranges(path: str) -> list[tuple[str, int, int]]:
    out = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            out.append((fields[0], int(fields[1]), int(fields[2])))
    return out


def _has_subids(name: str, uid: int) -> bool:
    return all(any(owner in (name, str(uid)) for owner, _, _ in _subordinate_ranges(f)) for f in
               ("/etc/subuid", "/etc/subgid"))


def _free_range() -> int:
    end = SUB_MIN
    for f in ("/etc/subuid", "/etc/subgid"):
        for _, start, count in _subordinate_ranges(f):
            end = max(end, start + count)
    return end


def make_user(name: str = USER) -> RootlessUser:
    """The user (made if missing, with subordinate ids if it has none) and its home."""
    for tool in ("useradd", "usermod", "userdel", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            raise AssertionError(f"{tool} is not installed: the rootless tests need it "
                                 f"(apt-get install passwd uidmap; .ci/install does)")
    made = False
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                        "/usr/sbin/nologin", "--user-group", name], check=True, capture_output=True)
        pw, made = pwd.getpwnam(name), True
    subids = None
    if not _has_subids(name, pw.pw_uid):
        start = _free_range()
        span = f"{start}-{start + SUB_COUNT - 1}"
        subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, name], check=True,
                       capture_output=True)
        subids = (start, SUB_COUNT)
    home = Path(tempfile.mkdtemp(prefix=f"{name}-home.", dir="/tmp"))
    user = RootlessUser(name, pw.pw_uid, pw.pw_gid, home, [], "", made=made, subids=subids)
    try:
        user.own(home)
        os.chmod(home, 0o700)
        user.python, user.pythonpath = _python_for(user)
    except BaseException:
        remove_user(user)
        raise
    return user


def _python_for(user: RootlessUser) -> tuple[list[str], str]:
    """An interpreter the user can run pybuild with, and the PYTHONPATH it needs."""
    site = os.pathsep.join(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [(sys.executable, str(REPO)), (shutil.which(version, path="/usr/local/bin:/usr/bin:/bin") or "",
                                                 f"{REPO}{os.pathsep}{site}")]
    tried = []
    for exe, path in candidates:
        if not exe:
            continue
        user.pythonpath = path
        try:
            proc = user.run(exe, "-c", IMPORT_CHECK)
        except OSError as e:                 # the user may not even execute it
            tried.append(f"{exe}: {e.strerror}")
            continue
        if proc.returncode == 0:
            return [exe], path
        tried.append(f"{exe}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    raise AssertionError(f"no python the user {user.name} may run can import pybuild and its dependencies "
                         f"(the checkout {REPO} must be readable by other users): " + "; ".join(tried))


def remove_user(user: RootlessUser) -> None:
    """Undo ``make_user``: the home, the ranges this session added, the user if it made it."""
    shutil.rmtree(user.home, ignore_errors=True)
    if user.subids is not None and not user.made:
        span = f"{user.subids[0]}-{user.subids[0] + user.subids[1] - 1}"
        subprocess.run(["usermod", "--del-subuids", span, "--del-subgids", span, user.name], capture_output=True)
    if user.made:
        subprocess.run(["userdel", user.name], capture_output=True)
        for f in ("/etc/subuid", "/etc/subgid"):          # userdel drops them; make sure
            _drop_lines(f, user.name, user.uid)


def _drop_lines(path: str, name: str, uid: int) -> None:
    try:
        lines = Path(path).read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return
    kept = [line for line in lines if line.split(":")[0] not in (name, str(uid))]
    if kept != lines:
        Path(path).write_text("".join(kept))
