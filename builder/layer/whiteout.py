"""Whiteouts and opaque markers, in both of their spellings.

In a layer tar (OCI image-spec layer.md) a deletion is an empty regular file ``<dir>/.wh.<name>``
and an opaque directory is marked by ``<dir>/.wh..wh..opq``.  In an overlay directory (an upper
dir, or a stored layer dir used as a lower) a deletion is a char device 0:0 and an opaque
directory carries the xattr ``trusted.overlay.opaque=y`` (``user.overlay.opaque=y`` in a store
written by a rootless pybuild, whose overlay mounts use ``userxattr``).

This module is the only place in pybuild that spells those names.
"""

from __future__ import annotations

import errno
import os
import stat

from builder.layer import userns

#: Prefix of a whiteout entry's basename in a layer tar.
WHITEOUT_PREFIX = ".wh."
#: Basename of the opaque-directory marker in a layer tar.
OPAQUE_MARKER = ".wh..wh..opq"
#: Prefix of AUFS metadata names (``.wh..wh.plnk`` …) that must never be materialised.
WHITEOUT_META_PREFIX = ".wh..wh."

#: The xattr overlayfs sets on an opaque directory (and its value).
OPAQUE_XATTR = "trusted.overlay.opaque"
OPAQUE_VALUE = b"y"
#: Overlay-private xattr namespaces: never copied into a layer tar.
OVERLAY_XATTR_PREFIXES: tuple[str, ...] = ("trusted.overlay.", "user.overlay.")
_USER_OPAQUE_XATTR = "user.overlay.opaque"

#: Mode a whiteout entry gets in a layer tar (as docker writes it).
WHITEOUT_TAR_MODE = 0o600


def is_overlay_whiteout(st: os.stat_result) -> bool:
    """True if an lstat result is an overlay whiteout: a char device with rdev 0:0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_whiteout_name(name: str) -> bool:
    """True if a basename is reserved (starts with ``.wh.``): a whiteout or opaque marker."""
    return name.startswith(WHITEOUT_PREFIX)


def is_opaque_marker(name: str) -> bool:
    """True if a basename is the opaque-directory marker ``.wh..wh..opq``."""
    return name == OPAQUE_MARKER


def is_whiteout_meta(name: str) -> bool:
    """True for AUFS metadata names (``.wh..wh.*`` other than the opaque marker)."""
    return name.startswith(WHITEOUT_META_PREFIX) and name != OPAQUE_MARKER


def whiteout_name(name: str) -> str:
    """The tar basename that deletes ``name``: ``.wh.<name>``."""
    if not name or "/" in name:
        raise ValueError(f"internal error: bad basename for a whiteout: {name!r}")
    return WHITEOUT_PREFIX + name


def whiteout_target(wh_name: str) -> str | None:
    """The basename a ``.wh.<name>`` entry deletes; None if ``wh_name`` is not a plain whiteout.

    Raises ValueError for the invalid bare forms ``.wh.`` and ``.wh..``/``.wh...``.
    """
    if not wh_name.startswith(WHITEOUT_PREFIX) or wh_name.startswith(WHITEOUT_META_PREFIX):
        return None
    target = wh_name[len(WHITEOUT_PREFIX):]
    if target in ("", ".", ".."):
        raise ValueError(f"invalid whiteout name {wh_name!r}")
    return target


def make_overlay_whiteout(dir_fd: int, name: str) -> None:
    """Create an overlay whiteout (char device 0:0, mode 0000) named ``name`` in ``dir_fd``."""
    os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dir_fd)


def opaque_xattr() -> str:
    """The xattr this process marks opaque directories with: ``trusted.overlay.opaque``, or in
    a user namespace (where trusted.* is out of reach and overlay mounts use ``userxattr``)
    ``user.overlay.opaque``."""
    return _USER_OPAQUE_XATTR if userns.in_user_namespace() else OPAQUE_XATTR


def mark_opaque(fd: int) -> None:
    """Mark the directory open on ``fd`` (O_RDONLY or O_PATH) opaque for overlayfs."""
    _setxattr_fd(fd, opaque_xattr(), OPAQUE_VALUE)


def is_opaque(fd_or_path: int | str | bytes) -> bool:
    """True if the directory (an fd, or a path not followed if a symlink) is overlay-opaque.

    Only the value ``y`` counts; ``x`` (xwhiteouts marker) is not an opaque directory.
    """
    for key in (OPAQUE_XATTR, _USER_OPAQUE_XATTR):
        try:
            if isinstance(fd_or_path, int):
                value = _getxattr_fd(fd_or_path, key)
            else:
                value = os.getxattr(fd_or_path, key, follow_symlinks=False)
        except OSError:
            continue
        if value == OPAQUE_VALUE:
            return True
    return False


def is_overlay_xattr(key: str) -> bool:
    """True for overlay-private xattrs (``trusted.overlay.*``, ``user.overlay.*``)."""
    return key.startswith(OVERLAY_XATTR_PREFIXES)


def _fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _setxattr_fd(fd: int, key: str, value: bytes) -> None:
    try:
        os.setxattr(fd, key, value)
    except OSError as e:
        if e.errno != errno.EBADF:
            raise
        # O_PATH fds reject f*xattr (EBADF); the /proc path works for them.
        os.setxattr(_fd_path(fd), key, value)


def _getxattr_fd(fd: int, key: str) -> bytes:
    try:
        return os.getxattr(fd, key)
    except OSError as e:
        if e.errno != errno.EBADF:  # an O_PATH fd
            raise
        return os.getxattr(_fd_path(fd), key)
