"""``resolve_in_scope``: docker's FollowSymlinkInScope, a path resolved inside a rootfs with
every symlink clamped to the root (ADD/COPY destinations, WORKDIR, COPY --from sources).
Runs on a plain directory: no root, no mount."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.errors import LayerError
from builder.layer.root import RootDir, resolve_in_scope


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "a").mkdir()
    links = {"link": "/etc", "rel": "etc", "up": "../../etc", "missing": "/nonexistent/../../etc",
             "a/b": "../etc", "loop": "loop", "file-link": "etc/passwd", "dangling": "/new/dir"}
    for name, target in links.items():
        os.symlink(target, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("path, resolved", [
    pytest.param("etc/passwd", "etc/passwd", id="plain"),
    pytest.param("/link/passwd", "etc/passwd", id="absolute-link"),
    pytest.param("rel/x", "etc/x", id="relative-link-then-missing-name"),
    pytest.param("up/x", "etc/x", id="dotdot-clamped-at-root"),
    # lexical: /nonexistent/.. is applied to the path, not asked of the kernel
    pytest.param("missing", "etc", id="through-a-missing-dir"),
    pytest.param("a/b/passwd", "etc/passwd", id="link-relative-to-its-dir"),
    pytest.param("../../etc", "etc", id="dotdot-in-the-path"),
    pytest.param("/", ".", id="root"),
    pytest.param("file-link", "etc/passwd", id="final-component-followed"),
    pytest.param("dangling/x", "new/dir/x", id="dangling-link-followed-to-where-it-points"),
])
def test_resolve_in_scope(rootfs: Path, path: str, resolved: str) -> None:
    with RootDir(rootfs) as root:
        assert resolve_in_scope(root, path) == resolved


def test_a_symlink_loop_is_refused(rootfs: Path) -> None:
    with RootDir(rootfs) as root, pytest.raises(LayerError, match="too many levels of symbolic links"):
        resolve_in_scope(root, "loop/x")
