"""unpack_layer(), extract_archive(), open_maybe_compressed(): real outcomes on disk."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from layerfixtures import CAP_V2, kinds, make_tar, member, needs_root
from listing import tar_lines, tree_lines

from builder.errors import LayerError
from builder.layer.unpack import extract_archive, open_maybe_compressed, unpack_layer

pytestmark = needs_root

REG, DIR, SYM, LNK = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
MTIME = 1_600_000_000


def _unpack(tmp: Path, *members) -> tuple[Path, object]:
    data = make_tar(*members)
    dest = tmp / "layer"
    result = unpack_layer(io.BytesIO(data), dest)
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.size == len(data)
    return dest, result


def test_overlay_format_whiteouts_and_opaque(tmp_path: Path) -> None:
    dest, result = _unpack(
        tmp_path,
        member("gone/.wh.file", uid=7, gid=8),
        member(".wh.top"),
        member("opq", DIR, mode=0o750),
        member("opq/.wh..wh..opq", mode=0o750),
        member("opq/new", data=b"new"),
        member("x/.wh..wh.plnk", data=b""),  # AUFS leftovers are never materialised
    )
    st = os.lstat(dest / "gone" / "file")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and (st.st_uid, st.st_gid) == (7, 8)
    assert st.st_mtime == MTIME
    assert stat.S_ISCHR(os.lstat(dest / ".wh.top".replace(".wh.", "")).st_mode)
    assert os.getxattr(dest / "opq", "trusted.overlay.opaque") == b"y"
    assert not (dest / "opq" / ".wh..wh..opq").exists()
    assert not (dest / "x" / ".wh..wh.plnk").exists()
    assert kinds(result.entries) == [("w", "gone/file"), ("w", "top"), ("d", "opq"),
                                     ("o", "opq"), ("f", "opq/new")]


def test_layer_hides_lower_when_mounted(tmp_path: Path) -> None:
    """The unpacked dir works as an overlay lower: whiteouts and opaque dirs take effect."""
    base = tmp_path / "base"
    (base / "opq").mkdir(parents=True)
    (base / "opq" / "old").write_bytes(b"old")
    (base / "file").write_bytes(b"f")
    (base / "stay").write_bytes(b"s")
    dest, _ = _unpack(tmp_path, member(".wh.file"), member("opq", DIR, mode=0o755),
                      member("opq/.wh..wh..opq", mode=0o755), member("opq/new", data=b"n"))
    merged = tmp_path / "merged"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={dest}:{base}", str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged)) == ["opq", "stay"]
        assert os.listdir(merged / "opq") == ["new"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_hardlinks_share_an_inode(tmp_path: Path) -> None:
    dest, _ = _unpack(tmp_path, member("a", data=b"data"), member("sl", SYM, linkname="a"),
                      member("b", LNK, linkname="a"), member("c", LNK, linkname="./a"),
                      member("hs", LNK, linkname="sl"))
    ino = os.lstat(dest / "a").st_ino
    assert os.lstat(dest / "b").st_ino == ino and os.lstat(dest / "c").st_ino == ino
    assert os.lstat(dest / "a").st_nlink == 3
    assert os.path.islink(dest / "hs")  # a hardlink to a symlink links the symlink itself


def test_modes_owners_mtimes(tmp_path: Path) -> None:
    dest, _ = _unpack(
        tmp_path,
        member("d", DIR, mode=0o2775, uid=1000, gid=1000, mtime=1000),
        member("d/suid", data=b"x", mode=0o4755, uid=1000, gid=50, mtime=2000),
        member("d/sl", SYM, linkname="/nowhere", uid=5, gid=6, mtime=3000),
        member("tmp", DIR, mode=0o1777),
        member("fifo", tarfile.FIFOTYPE, mode=0o600),
        member("null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        member("cap", data=b"c", mode=0o755,
               pax={"SCHILY.xattr.security.capability": CAP_V2.decode("utf-8",
                                                                       "surrogateescape"),
                    "SCHILY.xattr.trusted.overlay.opaque": "y"}),
    )
    st = os.lstat(dest / "d" / "suid")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (
        0o4755, 1000, 50, 2000)  # chmod after chown keeps setuid
    st = os.lstat(dest / "d")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_mtime) == (0o2775, 1000, 1000)
    st = os.lstat(dest / "d" / "sl")
    assert (st.st_uid, st.st_gid, st.st_mtime) == (5, 6, 3000)
    assert os.readlink(dest / "d" / "sl") == "/nowhere"
    assert stat.S_IMODE(os.lstat(dest / "tmp").st_mode) == 0o1777
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)
    assert os.lstat(dest / "null").st_rdev == os.makedev(1, 3)
    assert os.getxattr(dest / "cap", "security.capability") == CAP_V2
    assert "trusted.overlay.opaque" not in os.listxattr(dest / "cap")


def test_duplicates_later_wins(tmp_path: Path) -> None:
    dest, _ = _unpack(tmp_path, member("p", data=b"first"), member("p", DIR),
                      member("p/x", data=b"x"), member("p", SYM, linkname="t"),
                      member("q", data=b"1"), member("q", data=b"2"))
    assert os.readlink(dest / "p") == "t"
    assert (dest / "q").read_bytes() == b"2"


def test_unpack_refuses_non_empty_dest(tmp_path: Path) -> None:
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "junk").touch()
    with pytest.raises(LayerError, match="not empty"):
        unpack_layer(io.BytesIO(make_tar(member("a"))), tmp_path / "layer")


def test_diff_id_covers_trailing_padding(tmp_path: Path) -> None:
    data = make_tar(member("a", data=b"x"))
    assert len(data) == 10240  # Python pads to a record; all of it is hashed
    result = unpack_layer(io.BytesIO(data), tmp_path / "layer")
    assert result.size == 10240


# Each hostile row: tar members, then "raise" (LayerError) or a path inside the target that
# the entry must have landed on.  The sentinel outside the target must stay unchanged.
HOSTILE = [
    pytest.param([member("/abs", data=b"pwn")], "raise", id="absolute-name"),
    pytest.param([member("../sentinel", data=b"pwn")], "raise", id="dotdot"),
    pytest.param([member("a/../../sentinel", data=b"pwn")], "raise", id="dotdot-inner"),
    # A symlink to / is clamped to the target root: the file lands inside.
    pytest.param([member("evil", SYM, linkname="/"), member("evil/sentinel", data=b"pwn")],
                 "sentinel", id="symlink-to-root-then-file"),
    pytest.param([member("up", SYM, linkname="../../.."), member("up/sentinel", data=b"pwn")],
                 "sentinel", id="symlink-dotdot-then-file"),
    pytest.param([member("x", DIR), member("x", SYM, linkname="/"),
                  member("x/sentinel", data=b"pwn")], "sentinel", id="dir-replaced-by-symlink"),
    pytest.param([member("shadow", LNK, linkname="/etc/shadow")], "raise",
                 id="hardlink-absolute"),
    pytest.param([member("h", LNK, linkname="../sentinel")], "raise", id="hardlink-dotdot"),
    pytest.param([member("h", LNK, linkname="elsewhere")], "raise",
                 id="hardlink-not-in-layer"),
    # The symlink is linked, never the host file it names.
    pytest.param([member("s", SYM, linkname="SENTINEL"), member("h", LNK, linkname="s")], "h",
                 id="hardlink-to-symlink"),
    pytest.param([member(".", SYM, linkname="/")], "raise", id="symlink-named-dot"),
    pytest.param([member("./", SYM, linkname="/tmp")], "raise", id="symlink-named-dot-slash"),
    pytest.param([member(".", REG, data=b"x")], "raise", id="file-named-dot"),
    pytest.param([member(".wh..")], "raise", id="whiteout-dotdot"),
    pytest.param([member("d/.wh.")], "raise", id="whiteout-empty"),
    pytest.param([member("d/.wh...")], "raise", id="whiteout-dot"),
    pytest.param([member("null", tarfile.CHRTYPE, dev=(0, 0))], "raise", id="char-0-0"),
]


@pytest.mark.parametrize(("members", "outcome"), HOSTILE)
def test_hostile_layers(tmp_path: Path, members, outcome: str) -> None:
    sentinel = tmp_path / "sentinel"
    sentinel.write_bytes(b"safe")
    members = [(info, data) if info.linkname != "SENTINEL" else
               member(info.name, SYM, linkname=str(sentinel)) for info, data in members]
    target = tmp_path / "t" / "layer"
    target.parent.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    if outcome == "raise":
        with pytest.raises(LayerError):
            unpack_layer(io.BytesIO(make_tar(*members)), target)
    else:
        unpack_layer(io.BytesIO(make_tar(*members)), target)
        assert os.path.lexists(target / outcome)
    assert sentinel.read_bytes() == b"safe"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert os.listdir(tmp_path / "t") == ["layer"]


# extract_archive: the same defences, with `tar -x` semantics (leading / stripped).
EXTRACT_HOSTILE = [
    pytest.param([member("/abs", data=b"x")], "app/abs", id="absolute-name-stripped"),
    pytest.param([member("../../sentinel", data=b"x")], "raise", id="dotdot"),
    pytest.param([member("../escape", data=b"x")], "raise", id="dotdot-out-of-dest"),
    pytest.param([member("l", SYM, linkname="/"), member("l/sentinel", data=b"x")],
                 "sentinel", id="new-symlink-to-root"),
    pytest.param([member("h", LNK, linkname="/../../sentinel")], "raise", id="hardlink-out"),
    pytest.param([member(".", SYM, linkname="/")], "raise", id="symlink-named-dot"),
]


@pytest.mark.parametrize(("members", "outcome"), EXTRACT_HOSTILE)
def test_extract_archive_hostile(tmp_path: Path, members, outcome: str) -> None:
    sentinel = tmp_path / "sentinel"
    sentinel.write_bytes(b"safe")
    root = tmp_path / "root"
    root.mkdir()
    if outcome == "raise":
        with pytest.raises(LayerError):
            extract_archive(io.BytesIO(make_tar(*members)), root, "/app")
    else:
        extract_archive(io.BytesIO(make_tar(*members)), root, "/app")
        assert os.path.lexists(root / outcome)
    assert sentinel.read_bytes() == b"safe"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root", "sentinel"]


def test_extract_archive_over_existing_tree(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    app = root / "srv" / "app"
    app.mkdir(parents=True, mode=0o700)
    (app / "keep").write_bytes(b"kept")
    (app / "f").write_bytes(b"file that becomes a dir")
    (app / "d").mkdir()
    (app / "shared").write_bytes(b"old")
    os.link(app / "shared", root / "other-link")
    os.symlink(str(outside), app / "link")  # an absolute symlink out of the root...
    (root / str(outside).lstrip("/")).mkdir(parents=True)  # ...that resolves inside it
    os.symlink("/", root / "srv" / "toroot")
    data = make_tar(
        member("./", DIR, mode=0o755, uid=3, gid=4, mtime=111),
        member("f", DIR, mode=0o750),
        member("f/inner", data=b"inner"),
        member("d", DIR, mode=0o711, uid=9, gid=9, mtime=222),
        member("shared", data=b"new"),
        member("link/pwn", data=b"clamped"),
        member(".wh.keep", data=b""),  # not a whiteout here: a plain file
        member("hl", LNK, linkname="f/inner"),
    )
    # dest reached through a symlink to "/" inside the root: clamped, still root/srv/app.
    extract_archive(io.BytesIO(data), root, "srv/toroot/srv/app")
    assert (app / "keep").read_bytes() == b"kept"
    st = os.lstat(app)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o755, 3, 4, 111)
    assert (app / "f" / "inner").read_bytes() == b"inner"
    st = os.lstat(app / "d")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_mtime) == (0o711, 9, 222)
    assert (app / "shared").read_bytes() == b"new"
    assert (root / "other-link").read_bytes() == b"old"  # replaced, not written through
    assert os.listdir(outside) == []
    assert (root / str(outside).lstrip("/") / "pwn").read_bytes() == b"clamped"
    assert (app / ".wh.keep").is_file()
    assert os.lstat(app / "hl").st_ino == os.lstat(app / "f" / "inner").st_ino


def test_extract_archive_dangling_symlink_is_not_followed_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "app").mkdir(parents=True)
    outside.mkdir()
    os.symlink(str(outside), root / "app" / "link")  # dangling when seen from inside root
    with pytest.raises(LayerError, match="app/link"):
        extract_archive(io.BytesIO(make_tar(member("link/x", data=b"x"))), root, "app")
    assert os.listdir(outside) == []


def test_extract_archive_creates_dest(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    extract_archive(io.BytesIO(make_tar(member("x", data=b"1"))), root, "/a/b/c")
    assert (root / "a" / "b" / "c" / "x").read_bytes() == b"1"
    assert stat.S_IMODE(os.lstat(root / "a").st_mode) == 0o755
    assert tree_lines(root)[0] == "d " + f"{stat.S_IMODE(os.lstat(root).st_mode):04o} 0:0 ."


TAR = make_tar(member("hello", data=b"hello"))
EMPTY_PY_TAR = make_tar()
HELLO_LINE = "f 0644 0:0 5 " + hashlib.sha256(b"hello").hexdigest() + " hello"

COMPRESSION = [
    pytest.param(TAR, [HELLO_LINE], id="plain"),
    pytest.param(gzip.compress(TAR, mtime=0), [HELLO_LINE], id="gzip"),
    pytest.param(bz2.compress(TAR), [HELLO_LINE], id="bzip2"),
    pytest.param(lzma.compress(TAR), [HELLO_LINE], id="xz"),
    pytest.param(b"just some text\n" * 100, None, id="not-a-tar"),
    pytest.param(gzip.compress(b"text, gzipped"), None, id="gzip-not-a-tar"),
    pytest.param(b"\x1f\x8b\x08garbage", None, id="corrupt-gzip"),
    pytest.param(EMPTY_PY_TAR, None, id="empty-tar"),  # docker copies these, not extracts
    pytest.param(b"", None, id="empty-file"),
    pytest.param(b"\x28\xb5\x2f\xfd" + b"\0" * 600, None, id="zstd-without-module"),
]


@pytest.mark.parametrize(("content", "lines"), COMPRESSION)
def test_open_maybe_compressed(tmp_path: Path, content: bytes, lines) -> None:
    path = tmp_path / "archive"
    path.write_bytes(content)
    stream = open_maybe_compressed(path)
    if lines is None:
        assert stream is None
        return
    assert stream is not None
    with stream:
        assert tar_lines(stream) == lines


def test_tree_lines_lists_hardlinks_as_files(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    os.link(tmp_path / "f", tmp_path / "g")
    os.symlink("f", tmp_path / "s")
    os.chmod(tmp_path, 0o755)
    digest = hashlib.sha256(b"hello").hexdigest()
    assert tree_lines(tmp_path) == ["d 0755 0:0 .", f"f 0644 0:0 5 {digest} f",
                                    f"f 0644 0:0 5 {digest} g", "l 0777 0:0 s -> f"]


@pytest.mark.parametrize("members, mode", [
    pytest.param((member("a"),), 0o755, id="no-root-entry"),        # docker import: the root is 0755
    pytest.param((member(".", DIR, mode=0o750), member("a")), 0o750, id="root-entry-says"),
])
def test_layer_root_mode(tmp_path: Path, members, mode) -> None:
    dest = tmp_path / "layer"
    dest.mkdir(mode=0o700)                  # as a scratch dir from mkdtemp is
    unpack_layer(io.BytesIO(make_tar(*members)), dest)
    assert stat.S_IMODE(dest.stat().st_mode) == mode
