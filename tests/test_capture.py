"""capture(): overlay upper dir → layer tar, checked on real overlay mounts."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from layerfixtures import CAP_V2, kinds, needs_root, overlay
from listing import tar_lines, tree_lines

from builder.errors import LayerError
from builder.layer.capture import Capture, capture
from builder.layer.unpack import unpack_layer
from builder.oci.digest import EMPTY_LAYER_DIFF_ID, EMPTY_TAR

pytestmark = needs_root

HELLO = hashlib.sha256(b"hello").hexdigest()


def _lower(tmp: Path) -> Path:
    lower = tmp / "lower"
    (lower / "dir" / "sub").mkdir(parents=True)
    (lower / "dir" / "old").write_bytes(b"old")
    (lower / "dir" / "sub" / "deep").write_bytes(b"deep")
    (lower / "keep").mkdir()
    for name in ("a", "b", "c"):
        (lower / name).write_bytes(name.encode())
    return lower


def _capture(upper: Path) -> tuple[Capture, bytes]:
    buf = io.BytesIO()
    result = capture(upper, buf)
    return result, buf.getvalue()


def _in_merged(tmp: Path, change: Callable[[Path], None]) -> tuple[Capture, bytes, Path]:
    _lower(tmp)
    with overlay(tmp) as ov:
        change(ov.merged)
    result, data = _capture(ov.upper)
    return result, data, ov.upper


def _write(path: Path, data: bytes = b"hello", mode: int | None = None) -> None:
    path.write_bytes(data)
    if mode is not None:
        os.chmod(path, mode)


def _mknod(path: Path, kind: int, major: int, minor: int) -> None:
    os.mknod(path, kind | 0o640, os.makedev(major, minor))


def _chown(path: Path, uid: int, gid: int) -> Path:
    os.chown(path, uid, gid, follow_symlinks=False)
    return path


def _socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))


LONG = "d" * 60 + "/" + "f" * 120  # a 181-byte path: needs a PAX path record


def _long(m: Path) -> None:
    (m / ("d" * 60)).mkdir()
    _write(m / LONG)
    os.symlink("t" * 150, m / "longlink")


# Each row: one change made through the merged view, and lines that must be in the layer.
CASES = [
    pytest.param(lambda m: _write(m / "new"), [f"f 0644 0:0 5 {HELLO} new"], id="regular-file"),
    pytest.param(lambda m: (m / "newdir").mkdir(0o750), ["d 0750 0:0 newdir"], id="directory"),
    pytest.param(lambda m: os.symlink("../a", m / "sl"), ["l 0777 0:0 sl -> ../a"],
                 id="symlink"),
    pytest.param(lambda m: os.mkfifo(m / "fifo", 0o644), ["p 0644 0:0 fifo"], id="fifo"),
    pytest.param(lambda m: _mknod(m / "null", stat.S_IFCHR, 1, 3), ["c 0640 0:0 1,3 null"],
                 id="char-device"),
    pytest.param(lambda m: _mknod(m / "loop", stat.S_IFBLK, 7, 0), ["b 0640 0:0 7,0 loop"],
                 id="block-device"),
    # Deleting a lower file leaves a char 0:0 in upper → `.wh.a`.
    pytest.param(lambda m: os.remove(m / "a"), ["w a"], id="delete-lower-file"),
    # Deleting a lower dir leaves one whiteout for the dir, nothing for its children.
    pytest.param(lambda m: shutil.rmtree(m / "dir"), ["w dir"], id="delete-lower-tree"),
    # rm -rf dir && mkdir dir → opaque dir, marker right after the dir's own line.
    pytest.param(lambda m: (shutil.rmtree(m / "dir"), (m / "dir").mkdir(),
                            _write(m / "dir" / "x")),
                 ["d 0755 0:0 dir", "o dir", f"f 0644 0:0 5 {HELLO} dir/x"], id="opaque-dir"),
    pytest.param(lambda m: (_write(m / "f1"), os.link(m / "f1", m / "f2")),
                 [f"f 0644 0:0 5 {HELLO} f1", "h 0644 0:0 f2 -> f1"], id="hardlink"),
    pytest.param(lambda m: _write(m / "suid", mode=0o4755), [f"f 4755 0:0 5 {HELLO} suid"],
                 id="setuid"),
    pytest.param(lambda m: ((m / "tmp").mkdir(), os.chmod(m / "tmp", 0o1777)),
                 ["d 1777 0:0 tmp"], id="sticky-dir"),
    pytest.param(lambda m: ((m / "sg").mkdir(), os.chmod(m / "sg", 0o2775)),
                 ["d 2775 0:0 sg"], id="setgid-dir"),
    pytest.param(lambda m: _chown(m / "keep", 1000, 1001), ["d 0755 1000:1001 keep"],
                 id="chown-copies-up-dir"),
    # uid above 07777777 only fits a PAX record.
    pytest.param(lambda m: (_write(m / "big"), _chown(m / "big", 3_000_000, 3_000_001)),
                 [f"f 0644 3000000:3000001 5 {HELLO} big"], id="big-uid"),
    pytest.param(_long, [f"f 0644 0:0 5 {HELLO} {LONG}", f"l 0777 0:0 longlink -> {'t' * 150}"],
                 id="long-names"),
    pytest.param(lambda m: _write(m / "ünïcødé €"), [f"f 0644 0:0 5 {HELLO} ünïcødé €"],
                 id="non-ascii-name"),
    pytest.param(lambda m: _socket(m / "sock"), [], id="socket-skipped"),
]


@pytest.mark.parametrize(("change", "expected"), CASES)
def test_capture_entry_kinds(tmp_path: Path, change, expected: list[str]) -> None:
    result, data, _ = _in_merged(tmp_path, change)
    lines = tar_lines(io.BytesIO(data))
    for line in expected:
        assert line in lines
    assert not any(line.endswith(" sock") for line in lines)
    assert result.size == len(data) and result.diff_id == "sha256:" + hashlib.sha256(
        data).hexdigest()
    assert data.endswith(b"\0" * 1024) and len(data) % 512 == 0


def test_opaque_marker_follows_dir_header(tmp_path: Path) -> None:
    def change(m: Path) -> None:
        shutil.rmtree(m / "dir")
        (m / "dir").mkdir(0o750)
        os.chown(m / "dir", 5, 6)
    _, data, _ = _in_merged(tmp_path, change)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    i = names.index("dir")
    marker = members[i + 1]
    assert marker.name == "dir/.wh..wh..opq" and marker.isreg() and marker.size == 0
    assert (marker.mode, marker.uid, marker.gid) == (0o750, 5, 6)
    assert not any("overlay" in k for m in members for k in m.pax_headers)


def test_shared_whiteout_inode_is_not_a_hardlink(tmp_path: Path) -> None:
    result, data, upper = _in_merged(tmp_path, lambda m: (os.remove(m / "a"),
                                                          os.remove(m / "b")))
    sa, sb = os.lstat(upper / "a"), os.lstat(upper / "b")
    assert sa.st_ino == sb.st_ino and sa.st_nlink > 1  # the kernel shares one whiteout inode
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for name in (".wh.a", ".wh.b"):
        assert members[name].isreg() and members[name].size == 0
        assert members[name].mode == 0o600
    assert kinds(result.entries) == [("w", "a"), ("w", "b")]


def test_copied_up_dir_carries_no_overlay_xattrs(tmp_path: Path) -> None:
    _, data, upper = _in_merged(tmp_path, lambda m: _write(m / "dir" / "sub" / "new"))
    assert any(k.startswith("trusted.overlay.") for k in os.listxattr(upper / "dir"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["dir", "dir/sub", "dir/sub/new"]
    assert all(not m.pax_headers for m in members if m.name != "dir/sub/new")


def test_security_capability_is_kept(tmp_path: Path) -> None:
    def change(m: Path) -> None:
        _write(m / "ping")
        os.setxattr(m / "ping", "security.capability", CAP_V2)
        os.setxattr(m / "ping", "user.other", b"dropped")
    _, data, _ = _in_merged(tmp_path, change)
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8",
                      errors="surrogateescape") as tar:
        pax = tar.getmember("ping").pax_headers
    raw = pax["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape")
    assert raw == CAP_V2
    assert "SCHILY.xattr.user.other" not in pax


def test_header_normalisation(tmp_path: Path) -> None:
    """Docker-style headers: no uname/gname, integer mtimes, no atime/ctime, dirs end in /."""
    def change(m: Path) -> None:
        (m / "d").mkdir()
        _write(m / "d" / "f")
        os.utime(m / "d" / "f", (1_700_000_000.5, 1_700_000_000.5))
    _, data, _ = _in_merged(tmp_path, change)
    assert b"mtime=" not in data and b"atime=" not in data and b"ctime=" not in data
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            assert (m.uname, m.gname) == ("", "")
            assert isinstance(m.mtime, int)
        assert tar.getmember("d/f").mtime == 1_700_000_000
    assert b"d/\0" in data[:100]


def test_user_file_named_like_a_whiteout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "up" / "etc").mkdir(parents=True)
    _write(tmp_path / "up" / "etc" / ".wh.sneaky")
    with pytest.raises(LayerError, match=r"etc/\.wh\.sneaky"):
        capture(tmp_path / "up", io.BytesIO())


def test_empty_dir_is_the_docker_empty_tar(tmp_path: Path) -> None:
    buf = io.BytesIO()
    seen: list[int] = []
    result = capture(tmp_path, buf, on_progress=seen.append)
    assert buf.getvalue() == EMPTY_TAR
    assert (result.diff_id, result.size, result.entries) == (EMPTY_LAYER_DIFF_ID, 1024, ())
    assert seen[-1] == 1024


def test_missing_dir_is_a_layer_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="capture"):
        capture(tmp_path / "nope", io.BytesIO())


def _everything(m: Path) -> None:
    for case in CASES:
        if case.id not in ("socket-skipped", "delete-lower-tree"):
            case.values[0](m)


def test_round_trip_capture_unpack_capture(tmp_path: Path) -> None:
    first, data, upper = _in_merged(tmp_path, _everything)
    unpacked = unpack_layer(io.BytesIO(data), tmp_path / "unpacked")
    assert (unpacked.diff_id, unpacked.size) == (first.diff_id, first.size)
    assert kinds(unpacked.entries) == kinds(first.entries)
    second, data2 = _capture(tmp_path / "unpacked")
    assert second.diff_id == first.diff_id and data2 == data
    assert second.entries == first.entries


def test_round_trip_merged_view(tmp_path: Path) -> None:
    """The unpacked layer, used as a lower, shows what the original merged view showed."""
    _lower(tmp_path)
    with overlay(tmp_path) as ov:
        _everything(ov.merged)
        before = tree_lines(ov.merged)
    _, data = _capture(ov.upper)
    unpack_layer(io.BytesIO(data), tmp_path / "layer")
    merged2 = tmp_path / "merged2"
    merged2.mkdir()
    opts = f"lowerdir={tmp_path / 'layer'}:{tmp_path / 'lower'}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged2)], check=True)
    try:
        after = tree_lines(merged2)
    finally:
        subprocess.run(["umount", str(merged2)], check=True)
    assert after == before
