"""Whether overlayfs works here as a build needs it: asked once per build, by trying.

Old kernels, some container runtimes (a seccomp profile or a mount namespace that forbids
mounts), filesystems overlay refuses as an upper dir, and user namespaces on kernels before
5.11 all end in the same place: a step's union cannot be mounted.  ``overlay_problem`` mounts a
tiny union in a helper, deletes a file and replaces a directory through it, and checks that the
upper dir recorded a whiteout and an opaque directory the way pybuild reads them.  Its answer
picks the snapshotter (build/snapshotter.py) and is what ``pybuild info`` reports.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from builder.errors import PybuildError
from builder.layer import sandbox, whiteout
from builder.layer.overlay import OverlayMount


def overlay_problem(scratch: Path) -> str:
    """"" if a writable overlay can be mounted with ``scratch`` (an empty dir on the store's
    filesystem, left empty) as its home and records deletions as pybuild reads them; else a
    short reason.  Takes a fork and a mount: a few milliseconds."""
    try:
        for sub in ("lower/dir", "upper", "work", "merged"):
            (scratch / sub).mkdir(parents=True)
        (scratch / "lower" / "dir" / "file").write_bytes(b"")
        (scratch / "lower" / "file").write_bytes(b"")
        mount = OverlayMount(lowers=("lower",), upper="upper", work="work", target=str(scratch / "merged"),
                             cwd=str(scratch))
        try:
            sandbox.call_in_root(mount, _delete_and_replace)
        except (PybuildError, RuntimeError) as e:      # RuntimeError: the helper's OSError
            return str(e).splitlines()[0]
        upper = scratch / "upper"
        if not whiteout.is_overlay_whiteout(os.lstat(upper / "file")):
            return "overlay did not record a deletion as a whiteout"
        if not whiteout.is_opaque(str(upper / "dir")):
            return "overlay did not mark a replaced directory opaque"
        return ""
    except OSError as e:
        return f"probe overlay in {scratch}: {e.strerror}"
    finally:
        for entry in list(scratch.iterdir()) if scratch.is_dir() else []:
            shutil.rmtree(entry, ignore_errors=True)


def _delete_and_replace(merged: Path) -> None:
    os.unlink(merged / "file")
    shutil.rmtree(merged / "dir")
    (merged / "dir").mkdir()
