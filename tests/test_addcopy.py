"""ADD and COPY end to end: small Buildfiles built by the real CLI against a fresh store.

Each row makes its context in tmp_path, builds, and checks the last layer's lines (the
conformance format of tests/conformance/README.md), the rootfs, the history, or the
error.  pybuild follows docker's classic builder (DOCKER_BUILDKIT=0) where builders differ.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import io
import lzma
import os
import re
import tarfile
import threading
from email.utils import formatdate

import pytest
from buildfixtures import Built, Dir, File, Hard, Link, build, make_context

FROM = "FROM pbtest/busybox:base\n"
TAG = "addcopy/test:latest"
SENTINEL = "pybuild-addcopy-sentinel"      # a name no host should have in /etc


# -- expected lines ---------------------------------------------------------------------------
def f(path: str, data: bytes = b"hello\n", mode: int = 0o644, owner: str = "0:0") -> str:
    return f"f {mode:04o} {owner} {len(data)} {hashlib.sha256(data).hexdigest()} {path}"


def d(path: str, mode: int = 0o755, owner: str = "0:0") -> str:
    return f"d {mode:04o} {owner} {path}"


def sym(path: str, target: str) -> str:
    return f"l 0777 0:0 {path} -> {target}"


def h(path: str, target: str, mode: int = 0o644, owner: str = "0:0") -> str:
    return f"h {mode:04o} {owner} {path} -> {target}"


def assert_ok(b: Built) -> None:
    assert b.proc.returncode == 0, b.proc.stdout + b.proc.stderr
    assert "Traceback" not in b.proc.stderr


def assert_refused(b: Built, message: str) -> None:
    """Exit code 1, the message on stderr, no traceback, and no tag written."""
    assert b.proc.returncode == 1, b.proc.stdout + b.proc.stderr
    assert message in b.proc.stderr, b.proc.stderr
    assert "Traceback" not in b.proc.stderr, b.proc.stderr
    assert b.image_id is None, "a failed build must not be tagged"


# == file sources ==============================================================================
FILE_ROWS = [
    pytest.param("COPY f /d/\n", {"f": b"hello\n"},
                 [d("d"), f("d/f")], id="dest-trailing-slash"),
    # /etc exists in the base: the file goes inside it; etc is copied up (a `d` line)
    pytest.param("COPY f /etc\n", {"f": b"hello\n"},
                 [d("etc"), f("etc/f")], id="dest-existing-dir"),
    pytest.param("COPY f /newname\n", {"f": b"hello\n"},
                 [f("newname")], id="dest-new-path"),
    pytest.param("WORKDIR /app\nCOPY f sub/x\n", {"f": b"hello\n"},
                 [d("app"), d("app/sub"), f("app/sub/x")], id="relative-dest-joins-workdir"),
    # `.` is the WORKDIR itself, as a directory
    pytest.param("WORKDIR /app\nCOPY f .\n", {"f": b"hello\n"},
                 [d("app"), f("app/f")], id="dot-dest-is-workdir"),
    pytest.param("COPY f x\n", {"f": b"hello\n"},
                 [f("x")], id="relative-dest-default-workdir-root"),
    # missing parents are created 0755 root-owned, whatever the umask or the source
    pytest.param("COPY f /a/b/c/\n", {"f": b"hello\n"},
                 [d("a"), d("a/b"), d("a/b/c"), f("a/b/c/f")], id="parents-created-0755"),
    pytest.param("COPY f /f\n", {"f": File(mode=0o750)},
                 [f("f", mode=0o750)], id="mode-0750-kept"),
    pytest.param("COPY f /f\n", {"f": File(mode=0o4755)},
                 [f("f", mode=0o4755)], id="mode-setuid-kept"),
    # context files are owned 0:0 in the image, whoever owns them on the host
    pytest.param("COPY f /f\n", {"f": File(owner=(1000, 1000), mode=0o640)},
                 [f("f", mode=0o640)], id="owner-reset-to-root"),
    pytest.param("COPY f /etc/passwd\n", {"f": b"root:x:0:0::/:/bin/sh\n"},
                 [d("etc"), f("etc/passwd", b"root:x:0:0::/:/bin/sh\n")], id="overwrite-base-file"),
    # a leading / on the source is relative to the context (docker)
    pytest.param("COPY /f /g\n", {"f": b"hello\n"}, [f("g")], id="source-leading-slash"),
    # a trailing / on a file source is ignored; `..` inside a name is not a parent reference
    pytest.param("COPY a..b /x/\n", {"a..b": b"hello\n"}, [d("x"), f("x/a..b")], id="dots-in-name"),
    # a symlink source is dereferenced; the copy keeps the link's own name (docker)
    pytest.param("COPY alias /d/\n", {"real": b"hello\n", "alias": Link("real")},
                 [d("d"), f("d/alias")], id="symlink-source-followed"),
    pytest.param("ADD f /etc/\n", {"f": b"hello\n"}, [d("etc"), f("etc/f")], id="add-plain-file"),
]


@pytest.mark.parametrize("body, spec, want", FILE_ROWS)
def test_copy_file(store_root, tmp_path, body, spec, want):
    b = build(store_root, make_context(tmp_path / "ctx", spec), buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == want


# == directory sources =========================================================================
TREE = {"dir/a": b"a\n", "dir/sub": Dir(0o750), "dir/sub/b": File(b"b\n", mode=0o600)}

DIR_ROWS = [
    # the directory's contents are merged into dest; dir itself is not recreated under it
    pytest.param("COPY dir /d\n", TREE,
                 [d("d"), f("d/a", b"a\n"), d("d/sub", 0o750), f("d/sub/b", b"b\n", 0o600)],
                 id="contents-into-new-dest"),
    pytest.param("COPY dir/ /d/\n", TREE,
                 [d("d"), f("d/a", b"a\n"), d("d/sub", 0o750), f("d/sub/b", b"b\n", 0o600)],
                 id="trailing-slash-same"),
    # /tmp is 1777 in the base: an existing dest keeps its own mode
    pytest.param("COPY dir /tmp\n", {"dir": Dir(0o700), "dir/a": b"a\n"},
                 [d("tmp", 0o1777), f("tmp/a", b"a\n")], id="existing-dest-keeps-mode"),
    # a created dest is 0755 even when the source dir is 0700 (classic: mkdir 0755, no "." entry)
    pytest.param("COPY dir /new\n", {"dir": Dir(0o700), "dir/a": b"a\n"},
                 [d("new"), f("new/a", b"a\n")], id="created-dest-0755"),
    pytest.param("COPY dir /d/\n",
                 {"dir/t": b"t\n", "dir/rel": Link("t"), "dir/abs": Link("/etc/passwd"),
                  "dir/up": Link("../../..")},
                 [d("d"), sym("d/abs", "/etc/passwd"), sym("d/rel", "t"), f("d/t", b"t\n"),
                  sym("d/up", "../../..")], id="symlinks-stay-symlinks"),
    pytest.param("COPY dir /d/\n", {"dir/a": b"same\n", "dir/b": Hard("dir/a")},
                 [d("d"), f("d/a", b"same\n"), h("d/b", "d/a")], id="hardlinks-stay-hardlinks"),
    pytest.param("COPY dir /d/\n", {"dir/x/y/z/deep": b"deep\n"},
                 [d("d"), d("d/x"), d("d/x/y"), d("d/x/y/z"), f("d/x/y/z/deep", b"deep\n")],
                 id="nested-dirs"),
    # a file in the base is replaced by the incoming one (incoming wins per file)
    pytest.param("COPY dir /etc/\n", {"dir/group": b"g\n"},
                 [d("etc"), f("etc/group", b"g\n")], id="merge-over-existing"),
    # `.` copies the whole context
    pytest.param("COPY . /ctx/\n", {"a": b"a\n"}, [d("ctx"), f("ctx/a", b"a\n")], id="whole-context"),
]


@pytest.mark.parametrize("body, spec, want", DIR_ROWS)
def test_copy_dir(store_root, tmp_path, body, spec, want):
    b = build(store_root, make_context(tmp_path / "ctx", spec), buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == want


# == wildcards =================================================================================
WILD_ROWS = [
    pytest.param("COPY *.txt /d/\n", {"a.txt": b"a\n", "b.txt": b"b\n", "c.md": b"c\n"},
                 [d("d"), f("d/a.txt", b"a\n"), f("d/b.txt", b"b\n")], id="star-txt"),
    # a match that is a directory copies its contents (docker's testCopyWildcards)
    pytest.param("COPY sub/* /d/\n", {"sub/dir1/dir2/foo": b"foo\n"},
                 [d("d"), d("d/dir2"), f("d/dir2/foo", b"foo\n")], id="match-dir-copies-contents"),
    # `*` does not cross `/`
    pytest.param("COPY */*.txt /d/\n", {"x/a.txt": b"a\n", "x/y/b.txt": b"b\n", "top.txt": b"t\n"},
                 [d("d"), f("d/a.txt", b"a\n")], id="star-per-segment"),
    pytest.param("COPY f?.txt /d/\n", {"f1.txt": b"1\n", "f22.txt": b"2\n"},
                 [d("d"), f("d/f1.txt", b"1\n")], id="question-mark"),
    pytest.param("COPY [ab].txt /d/\n", {"a.txt": b"a\n", "c.txt": b"c\n"},
                 [d("d"), f("d/a.txt", b"a\n")], id="class"),
    # one match into a file path is fine: the "must end with /" rule counts matches
    pytest.param("COPY f*.go /one.go\n", {"foo.go": b"go\n"}, [f("one.go", b"go\n")],
                 id="single-match-to-file"),
]


@pytest.mark.parametrize("body, spec, want", WILD_ROWS)
def test_wildcards(store_root, tmp_path, body, spec, want):
    b = build(store_root, make_context(tmp_path / "ctx", spec), buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == want


# == errors: bad sources, escapes ===============================================================
ERROR_ROWS = [
    pytest.param("COPY *.txt /d\n", {"a.txt": b"a\n", "b.txt": b"b\n"},
                 "must be a directory and end with a /", id="multi-wildcard-no-slash"),
    pytest.param("COPY a b /d\n", {"a": b"a\n", "b": b"b\n"},
                 "must be a directory and end with a /", id="multi-source-no-slash"),
    pytest.param("COPY *.nothing /d/\n", {"a": b"a\n"}, "no source files were specified",
                 id="wildcard-no-match"),
    pytest.param("COPY missing /d/\n", {"a": b"a\n"}, "file not found in build context",
                 id="missing-source"),
    # ../outside exists (tmp_path/outside): refused by name, before any lookup
    pytest.param("COPY ../outside /d/\n", {}, "forbidden path outside the build context",
                 id="dotdot"),
    pytest.param("COPY a/../../outside /d/\n", {"a": Dir()},
                 "forbidden path outside the build context", id="dotdot-inside"),
    # pybuild refuses a symlink leaving the context (docker would clamp it to the context)
    pytest.param("COPY pw /d/\n", {"pw": Link("/etc/passwd")},
                 "forbidden path outside the build context", id="symlink-to-etc-passwd"),
    pytest.param("COPY up/outside /d/\n", {"up": Link("..")},
                 "forbidden path outside the build context", id="symlink-to-parent"),
    pytest.param("COPY up /d/\n", {"up": Link("..")},
                 "forbidden path outside the build context", id="symlink-to-parent-as-dir"),
    pytest.param("COPY linkdir /d/\n", {"linkdir": Link("/etc")},
                 "forbidden path outside the build context", id="symlinked-dir-outside"),
    pytest.param("COPY linkdir/passwd /d/\n", {"linkdir": Link("/etc")},
                 "forbidden path outside the build context", id="through-symlinked-dir"),
    # each wildcard match is checked like a named source
    pytest.param("COPY *.txt /d/\n", {"ok.txt": b"a\n", "pw.txt": Link("/etc/passwd")},
                 "forbidden path outside the build context", id="wildcard-match-escapes"),
    pytest.param("COPY http://127.0.0.1:9/x /d/\n", {}, "source can't be a URL for COPY",
                 id="copy-url"),
]


@pytest.mark.parametrize("body, spec, message", ERROR_ROWS)
def test_refused(store_root, tmp_path, body, spec, message):
    (tmp_path / "outside").write_text("secret\n")
    b = build(store_root, make_context(tmp_path / "ctx", spec), buildfile=FROM + body, tag=TAG, check=False)
    assert_refused(b, message)


# == destination through symlinks of the image =================================================
def test_dest_symlink_with_dotdot_stays_in_rootfs(store_root, tmp_path):
    """/link -> /nonexistent/../../etc resolves like a chroot would: /etc of the image."""
    assert not os.path.lexists(f"/etc/{SENTINEL}")
    b = build(store_root, make_context(tmp_path / "ctx", {SENTINEL: b"x\n"}),
              buildfile=FROM + f"RUN ln -s /nonexistent/../../etc /link\nCOPY {SENTINEL} /link/\n",
              tag=TAG, check=False)
    assert not os.path.lexists(f"/etc/{SENTINEL}"), "COPY wrote on the host"
    assert_ok(b)
    assert b.last_layer() == [d("etc"), f(f"etc/{SENTINEL}", b"x\n")]


def test_dest_absolute_symlink_to_host_path_stays_in_rootfs(store_root, tmp_path):
    """A link naming a real host directory leads to that path *inside* the image."""
    host = tmp_path / "hostdir"
    host.mkdir()
    b = build(store_root, make_context(tmp_path / "ctx", {"f": b"x\n"}),
              buildfile=FROM + f"RUN ln -s {host} /link\nCOPY f /link/\n", tag=TAG, check=False)
    assert list(host.iterdir()) == [], "COPY wrote on the host"
    assert_ok(b)
    rel = str(host).lstrip("/")
    assert f(f"{rel}/f", b"x\n") in b.last_layer()


@pytest.mark.parametrize("body, want", [
    pytest.param("RUN ln -s / /rootlink\nCOPY f /rootlink/x\n", f("x", b"x\n"), id="link-to-root"),
    # a relative link climbing above / is clamped at the image root
    pytest.param("RUN ln -s ../../../../tmp /up\nCOPY f /up/\n", f("tmp/f", b"x\n"), id="relative-climb"),
    # an existing symlink to a dir, named without a trailing /, is a directory dest
    pytest.param("RUN ln -s /etc /etclink\nCOPY f /etclink\n", f("etc/f", b"x\n"), id="link-to-dir-no-slash"),
    # classic resolves the whole dest: COPY onto a link to a file overwrites the file it names
    pytest.param("RUN ln -s /etc/group /glink\nCOPY f /glink\n", f("etc/group", b"x\n"),
                 id="link-to-file"),
    # a dangling link is followed to the path it names, created with its parents
    pytest.param("RUN ln -s /no/such /dl\nCOPY f /dl/\n", f("no/such/f", b"x\n"), id="dangling-link"),
    pytest.param("RUN mkdir /a && ln -s ../b /a/up\nCOPY f /a/up/c/\n", f("b/c/f", b"x\n"),
                 id="relative-link-then-missing"),
])
def test_dest_through_symlink(store_root, tmp_path, body, want):
    b = build(store_root, make_context(tmp_path / "ctx", {"f": b"x\n"}),
              buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert want in b.last_layer()
    assert want in b.rootfs()


# == ADD archives ==============================================================================
def tar_bytes(*entries: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name: str, data: bytes | None = None, *, kind=tarfile.REGTYPE, mode=0o644,
          uid=0, gid=0, linkname="") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, 1_600_000_000
    info.linkname = linkname
    if kind == tarfile.REGTYPE:
        info.size = len(data or b"")
    return info, data


ARCHIVE = tar_bytes(entry("data", kind=tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1000),
                    entry("data/p", b"payload\n", mode=0o640, uid=1000, gid=1000),
                    entry("data/ln", kind=tarfile.SYMTYPE, linkname="p"))
ARCHIVE_LINES = [d("x"), d("x/data", 0o750, "1000:1000"), sym("x/data/ln", "p"),
                 f("x/data/p", b"payload\n", 0o640, "1000:1000")]


@pytest.mark.parametrize("name, data", [
    pytest.param("a.tar", ARCHIVE, id="tar"),
    pytest.param("a.tar.gz", gzip.compress(ARCHIVE), id="gzip"),
    pytest.param("a.tar.bz2", bz2.compress(ARCHIVE), id="bzip2"),
    pytest.param("a.tar.xz", lzma.compress(ARCHIVE), id="xz"),
    # detection is by content, not by name
    pytest.param("blob.bin", gzip.compress(ARCHIVE), id="gzip-any-name"),
])
def test_add_extracts_archive(store_root, tmp_path, name, data):
    b = build(store_root, make_context(tmp_path / "ctx", {name: data}),
              buildfile=FROM + f"ADD {name} /x/\n", tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == ARCHIVE_LINES          # tar owners and modes kept


@pytest.mark.parametrize("body, name, data, want", [
    # not an archive: copied as a file whatever its name
    pytest.param("ADD x.tar.gz /x/\n", "x.tar.gz", b"not a tarball\n",
                 [d("x"), f("x/x.tar.gz", b"not a tarball\n")], id="fake-tar-gz"),
    pytest.param("ADD x.tar.gz /x/\n", "x.tar.gz", b"",
                 [d("x"), f("x/x.tar.gz", b"")], id="empty-tar-gz"),
    # COPY never extracts
    pytest.param("COPY a.tar /x/\n", "a.tar", ARCHIVE, [d("x"), f("x/a.tar", ARCHIVE)], id="copy-tar"),
    pytest.param("COPY a.tgz /x/\n", "a.tgz", gzip.compress(ARCHIVE, mtime=0),
                 [d("x"), f("x/a.tgz", gzip.compress(ARCHIVE, mtime=0))], id="copy-tgz"),
])
def test_not_extracted(store_root, tmp_path, body, name, data, want):
    b = build(store_root, make_context(tmp_path / "ctx", {name: data}),
              buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == want


@pytest.mark.parametrize("members, message", [
    pytest.param([entry("../evil", b"evil\n")], "escapes", id="dotdot-name"),
    pytest.param([entry("a/../../evil", b"evil\n")], "escapes", id="dotdot-inside-name"),
    # a relative symlink climbing out of dest, then a file through it (classic: breakout error)
    pytest.param([entry("esc", kind=tarfile.SYMTYPE, linkname="../../../../../../../../HOST"),
                  entry("esc/evil", b"evil\n")], "outside", id="symlink-escape-then-file"),
    pytest.param([entry("hl", kind=tarfile.LNKTYPE, linkname="../../../../HOST/f")], "escapes",
                 id="hardlink-escape"),
    # an absolute link is clamped to the rootfs, but a file through a link of the same archive
    # is refused outright (relative links can chain: l1 -> . and l1/l2 -> .. reach above dest)
    pytest.param([entry("esc", kind=tarfile.SYMTYPE, linkname="/HOST"),
                  entry("esc/evil", b"evil\n")], "goes through symlink", id="abs-symlink-then-file"),
    pytest.param([entry("l1", kind=tarfile.SYMTYPE, linkname="."),
                  entry("l1/l2", kind=tarfile.SYMTYPE, linkname=".."),
                  entry("l1/l2/evil", b"evil\n")], "goes through symlink", id="symlink-chain"),
])
def test_add_hostile_archive_refused(store_root, tmp_path, members, message):
    host = tmp_path / "host"
    host.mkdir()
    (host / "f").write_text("host file\n")
    fixed = []
    for info, data in members:
        info.linkname = info.linkname.replace("/HOST", str(host))
        fixed.append((info, data))
    b = build(store_root, make_context(tmp_path / "ctx", {"evil.tar": tar_bytes(*fixed)}),
              buildfile=FROM + "ADD evil.tar /x/\n", tag=TAG, check=False)
    assert sorted(p.name for p in host.iterdir()) == ["f"], "ADD wrote on the host"
    assert (host / "f").read_text() == "host file\n"
    assert_refused(b, message)
    assert "evil.tar" in b.proc.stderr, "the error names the archive"


@pytest.mark.parametrize("members, want", [
    # docker strips the leading / : the entry lands in dest
    pytest.param([entry("/abs-evil", b"evil\n")], f("x/abs-evil", b"evil\n"), id="absolute-name"),
    # an absolute symlink is kept as it is (it means /HOST of the image, never of the host)
    pytest.param([entry("esc", kind=tarfile.SYMTYPE, linkname="/HOST")], sym("x/esc", "/HOST"),
                 id="absolute-symlink"),
    # a later entry replacing the link by a directory makes the path safe again
    pytest.param([entry("re", kind=tarfile.SYMTYPE, linkname="/HOST"),
                  entry("re", kind=tarfile.DIRTYPE, mode=0o755),
                  entry("re/ok", b"ok\n")], f("x/re/ok", b"ok\n"), id="link-replaced-by-dir"),
])
def test_add_archive_stays_in_rootfs(store_root, tmp_path, members, want):
    host = tmp_path / "host"
    host.mkdir()
    fixed = []
    for info, data in members:
        info.linkname = info.linkname.replace("/HOST", str(host))
        fixed.append((info, data))
    b = build(store_root, make_context(tmp_path / "ctx", {"evil.tar": tar_bytes(*fixed)}),
              buildfile=FROM + "ADD evil.tar /x/\n", tag=TAG, check=False)
    assert list(host.iterdir()) == [], "ADD wrote on the host"
    assert_ok(b)
    assert want.replace("/HOST", str(host)) in b.rootfs()


# == ADD of a URL ==============================================================================
LAST_MODIFIED = 1_500_000_000


@pytest.fixture
def http_files(tmp_path):
    """Serve {name: bytes} from 127.0.0.1 on an ephemeral port with a Last-Modified header."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = files.get(self.path.lstrip("/"))
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Last-Modified", formatdate(LAST_MODIFIED, usegmt=True))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield files, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("name, data, dest, want", [
    pytest.param("file.txt", b"downloaded\n", "/x/", f("x/file.txt", b"downloaded\n", 0o600),
                 id="into-dir"),
    pytest.param("file.txt", b"downloaded\n", "/y", f("y", b"downloaded\n", 0o600), id="to-path"),
    # a URL is never extracted, even when it is a tar
    pytest.param("a.tar", ARCHIVE, "/x/", f("x/a.tar", ARCHIVE, 0o600), id="tar-not-extracted"),
])
def test_add_url(store_root, tmp_path, http_files, name, data, dest, want):
    files, base = http_files
    files[name] = data
    b = build(store_root, make_context(tmp_path / "ctx"),
              buildfile=FROM + f"ADD {base}/{name} {dest}\n", tag=TAG, check=False)
    assert_ok(b)
    assert want in b.last_layer()
    with b.store.open_blob(layer_ids(b)[-1]) as blob:
        with tarfile.open(fileobj=blob, mode="r|") as tar:
            mtimes = {m.name.strip("/"): m.mtime for m in tar}
    assert mtimes[want.rsplit(" ", 1)[1]] == LAST_MODIFIED, "mtime comes from Last-Modified"


def test_add_url_missing_is_an_error(store_root, tmp_path, http_files):
    _, base = http_files
    b = build(store_root, make_context(tmp_path / "ctx"),
              buildfile=FROM + f"ADD {base}/nosuch /x/\n", tag=TAG, check=False)
    assert_refused(b, "download failed")


def layer_ids(b: Built) -> list[str]:
    from builder.oci.config import parse_config
    return list(parse_config(b.store.image_config(b.image_id)).diff_ids)


# == layers that change nothing, history ======================================================
def test_copy_identical_content_is_still_a_layer(store_root, tmp_path):
    """The file is rewritten (new mtime in the layer), so classic records a layer."""
    b = build(store_root, make_context(tmp_path / "ctx", {"group": b"root:x:0:\nuser:x:1000:\n"}),
              buildfile=FROM + "COPY group /etc/group\n", tag=TAG, check=False)
    assert_ok(b)
    assert b.history()[-1].startswith("layer ")


@pytest.mark.parametrize("body, want", [
    pytest.param("WORKDIR /etc\n", ["empty  /bin/sh -c #(nop) WORKDIR /etc"], id="workdir-existing"),
    pytest.param("WORKDIR /new\n", ["layer  /bin/sh -c #(nop) WORKDIR /new"], id="workdir-created"),
])
def test_workdir_layers(store_root, tmp_path, body, want):
    b = build(store_root, make_context(tmp_path / "ctx"), buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert b.history() == want


HEX = "[0-9a-f]{64}"


@pytest.mark.parametrize("body, spec, pattern", [
    pytest.param("COPY f /dest\n", {"f": b"x\n"}, rf"COPY file:{HEX} in /dest ", id="file"),
    pytest.param("COPY dir /dest/\n", {"dir/a": b"x\n"}, rf"COPY dir:{HEX} in /dest/ ", id="dir"),
    pytest.param("COPY a b /dest/\n", {"a": b"a\n", "b": b"b\n"}, rf"COPY multi:{HEX} in /dest/ ",
                 id="multi"),
    # a wildcard with one match is not `multi:`
    pytest.param("ADD *.txt /dest/\n", {"a.txt": b"a\n"}, rf"ADD file:{HEX} in /dest/ ", id="add-one-match"),
    # the dest is shown as written, not joined to WORKDIR
    pytest.param("WORKDIR /w\nCOPY f rel\n", {"f": b"x\n"}, rf"COPY file:{HEX} in rel ", id="relative-dest"),
])
def test_created_by(store_root, tmp_path, body, spec, pattern):
    b = build(store_root, make_context(tmp_path / "ctx", spec), buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    last = b.history()[-1]
    assert re.fullmatch(r"layer  /bin/sh -c #\(nop\) " + pattern, last), repr(last)


def test_created_by_file_hash_is_content_sha256(store_root, tmp_path):
    data = b"content\n"
    b = build(store_root, make_context(tmp_path / "ctx", {"f": data}),
              buildfile=FROM + "COPY f /f\n", tag=TAG, check=False)
    assert_ok(b)
    assert f"file:{hashlib.sha256(data).hexdigest()} in /f " in b.history()[-1]


def test_workdir_through_dangling_symlink(store_root, tmp_path):
    """WORKDIR resolves links like a COPY dest: /wl -> /nonexistent/../../srv makes /srv."""
    b = build(store_root, make_context(tmp_path / "ctx", {"f": b"x\n"}),
              buildfile=FROM + "RUN ln -s /nonexistent/../../srv /wl\nWORKDIR /wl\nCOPY f .\n",
              tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == [d("srv"), f("srv/f", b"x\n")]
