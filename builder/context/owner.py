"""``ADD/COPY --chown=user[:group]``: the uid/gid, looked up in the DESTINATION rootfs.

Runs inside the step's helper process: /etc/passwd and /etc/group are read from the merged
root through RootDir (symlinks resolved inside the root), never through the host's NSS.
Docker's classic builder (``parseChownFlag``): numeric ids are used as they are; a name must
be found (else an error); with the group omitted the group is looked up by the *user's* name
(a numeric user gives gid = uid).  ``root`` needs no files.
"""

from __future__ import annotations

import os

from builder.errors import ContextError, LayerError
from builder.layer.root import RootDir, resolve_in_scope

MAX_DB = 16 << 20          # a passwd/group file larger than this is not one


def resolve_owner(root: RootDir, spec: str) -> tuple[int, int]:
    """(uid, gid) for a ``--chown`` value, names resolved in ``root``'s /etc files."""
    user, _, group = spec.partition(":")
    if not user:
        raise ContextError(f"--chown={spec}: the user part is empty")
    if not group:
        group = user
    uid = _id_of(root, user, "/etc/passwd", "user")
    gid = _id_of(root, group, "/etc/group", "group")
    return uid, gid


def _id_of(root: RootDir, name: str, db: str, what: str) -> int:
    if name.isdigit():
        return int(name)
    if name == "root":
        return 0
    for fields in read_db(root, db):
        if fields[0] == name and len(fields) > 2 and fields[2].isdigit():
            return int(fields[2])
    raise ContextError(f"--chown: unable to find {what} {name}: no matching entries in {db}")


def read_db(root: RootDir, path: str) -> list[list[str]]:
    """The colon-separated lines of ``path`` inside the root ([] if it does not exist)."""
    rel = resolve_in_scope(root, path)
    try:
        dirfd, name = root.parent_of(rel)
    except LayerError:
        return []
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dirfd)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise ContextError(f"--chown: read {path} of the image: {e.strerror}") from e
    finally:
        os.close(dirfd)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_DB)
    lines = data.decode("utf-8", "surrogateescape").splitlines()
    return [line.split(":") for line in lines if line and not line.startswith("#")]
