"""ADD/COPY flags end to end (--chown, --chmod, --exclude, --link, ADD --checksum,
COPY --from), heredoc sources, created_by strings and the cache key, built by the real CLI.

The base image's /etc/passwd has root (0) and user (1000); /etc/group has root (0) and user
(1000).  Rows that need more names add them with RUN first: --chown must read the
DESTINATION rootfs, so a name the host lacks still resolves.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from buildfixtures import File, Link, build, make_context
from test_addcopy import ARCHIVE, ARCHIVE_LINES, FROM, HEX, TAG, assert_ok, assert_refused, d, f, http_files

__all__ = ["http_files"]      # the fixture, imported so this module can use it

ADD_USERS = ("RUN echo 'app:x:2000:2001::/:/bin/sh' >> /etc/passwd && "
             "echo 'app:x:3000:' >> /etc/group && echo 'staff:x:50:' >> /etc/group\n")


@pytest.mark.parametrize("body, spec, want", [
    # numeric ids need no lookup; a numeric user alone gives gid = uid
    pytest.param("COPY --chown=7:8 f /f\n", {"f": b"x\n"}, [f("f", b"x\n", owner="7:8")], id="numeric"),
    pytest.param("COPY --chown=42 f /f\n", {"f": b"x\n"}, [f("f", b"x\n", owner="42:42")], id="numeric-user-only"),
    # names come from the image's files; the group defaults to the group NAMED like the user
    # (classic builder), not the user's primary gid (2001 here)
    pytest.param(ADD_USERS + "COPY --chown=app f /f\n", {"f": b"x\n"},
                 [f("f", b"x\n", owner="2000:3000")], id="name-group-by-user-name"),
    pytest.param(ADD_USERS + "COPY --chown=app:staff f /f\n", {"f": b"x\n"},
                 [f("f", b"x\n", owner="2000:50")], id="name-and-group"),
    pytest.param("COPY --chown=user:0 f /f\n", {"f": b"x\n"}, [f("f", b"x\n", owner="1000:0")],
                 id="name-and-numeric-group"),
    # flag values are expanded with the env
    pytest.param("ENV U=5\nCOPY --chown=$U:${U} f /f\n", {"f": b"x\n"}, [f("f", b"x\n", owner="5:5")],
                 id="expanded"),
    # new parent dirs get the owner too; a directory's entries all do (symlinks included)
    pytest.param("COPY --chown=9:9 dir /new/sub/\n", {"dir/a": b"a\n", "dir/l": Link("a")},
                 [d("new", owner="9:9"), d("new/sub", owner="9:9"), f("new/sub/a", b"a\n", owner="9:9"),
                  "l 0777 9:9 new/sub/l -> a"], id="dir-and-parents"),
])
def test_chown(store_root, tmp_path, body, spec, want):
    b = build(store_root, make_context(tmp_path / "ctx", spec), buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == want


def test_add_archive_ignores_chown(store_root, tmp_path):
    """Classic builder: --chown does not reach extracted archive entries (nor the dest)."""
    b = build(store_root, make_context(tmp_path / "ctx", {"a.tar": ARCHIVE}),
              buildfile=FROM + "ADD --chown=5:5 a.tar /x/\n", tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == ARCHIVE_LINES


@pytest.mark.parametrize("body, message", [
    pytest.param("COPY --chown=nosuch f /f\n", "unable to find user nosuch", id="unknown-user"),
    pytest.param("COPY --chown=0:nosuch f /f\n", "unable to find group nosuch", id="unknown-group"),
    # the host's root has a group "root"; the image's "user" group exists, but no group "app"
    pytest.param("RUN echo 'app:x:2000:2000::/:/bin/sh' >> /etc/passwd\nCOPY --chown=app f /f\n",
                 "unable to find group app", id="no-group-named-like-user"),
])
def test_chown_refused(store_root, tmp_path, body, message):
    assert_refused(build(store_root, make_context(tmp_path / "ctx", {"f": b"x\n"}),
                         buildfile=FROM + body, tag=TAG, check=False), message)


@pytest.mark.parametrize("body, spec, want", [
    pytest.param("COPY --chmod=0755 f /f\n", {"f": File(b"x\n", 0o600)}, [f("f", b"x\n", 0o755)], id="file"),
    pytest.param("COPY --chmod=600 f /f\n", {"f": File(b"x\n", 0o644)}, [f("f", b"x\n", 0o600)], id="no-leading-0"),
    # files and directories of a tree, never symlinks
    pytest.param("COPY --chmod=0750 dir /t/\n", {"dir/s/a": b"a\n", "dir/l": Link("s")},
                 [d("t", 0o750), "l 0777 0:0 t/l -> s", d("t/s", 0o750), f("t/s/a", b"a\n", 0o750)],
                 id="tree"),
    pytest.param("COPY --chmod=644 --chown=3:4 f /f\n", {"f": File(b"x\n", 0o700)},
                 [f("f", b"x\n", 0o644, "3:4")], id="with-chown"),
    # symbolic modes (BuildKit) apply to each entry's own bits, like chmod(1)
    pytest.param("COPY --chmod=u+x,g-r f /f\n", {"f": File(b"x\n", 0o644)}, [f("f", b"x\n", 0o704)],
                 id="symbolic-add-remove"),
    pytest.param("COPY --chmod=+x f /f\n", {"f": File(b"x\n", 0o640)}, [f("f", b"x\n", 0o751)],
                 id="symbolic-all-classes"),
    # X: execute for directories (and already-executable files) only
    pytest.param("COPY --chmod=a=rX dir /t/\n", {"dir/s/a": File(b"a\n", 0o664)},
                 [d("t", 0o555), d("t/s", 0o555), f("t/s/a", b"a\n", 0o444)], id="symbolic-capital-x"),
])
def test_chmod(store_root, tmp_path, body, spec, want):
    b = build(store_root, make_context(tmp_path / "ctx", spec), buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert sorted(b.last_layer()) == sorted(want)


@pytest.mark.parametrize("value", ["8", "17777", "", "u+q", "z+x", "u", "u+x,"])
def test_chmod_refused(store_root, tmp_path, value):
    assert_refused(build(store_root, make_context(tmp_path / "ctx", {"f": b"x\n"}),
                         buildfile=FROM + f"COPY --chmod={value} f /f\n", tag=TAG, check=False),
                   "invalid chmod parameter")


PARENTS_SPEC = {"x/y/a.txt": b"a\n", "x/b.txt": b"b\n", "z/c.txt": b"c\n"}


@pytest.mark.parametrize("body, want", [
    # every source keeps its path below the destination
    pytest.param("COPY --parents x/y/a.txt z/c.txt /p/\n",
                 [d("p"), d("p/x"), d("p/x/y"), f("p/x/y/a.txt", b"a\n"), d("p/z"), f("p/z/c.txt", b"c\n")],
                 id="files"),
    # /./ is the pivot: what comes before it is dropped
    pytest.param("COPY --parents ./x/./y/*.txt /p/\n", [d("p"), d("p/y"), f("p/y/a.txt", b"a\n")], id="pivot"),
    # a directory keeps its own name
    pytest.param("COPY --parents x /p/\n",
                 [d("p"), d("p/x"), f("p/x/b.txt", b"b\n"), d("p/x/y"), f("p/x/y/a.txt", b"a\n")], id="dir"),
    # BuildKit: with --parents a source that does not exist is skipped, not an error
    pytest.param("COPY --parents nothere z/c.txt /p/\n", [d("p"), d("p/z"), f("p/z/c.txt", b"c\n")],
                 id="missing-skipped"),
])
def test_parents(store_root, tmp_path, body, want):
    b = build(store_root, make_context(tmp_path / "ctx", PARENTS_SPEC), buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert sorted(b.last_layer()) == sorted(want)


EXCLUDE_SPEC = {"dir/a.go": b"go\n", "dir/a.txt": b"txt\n", "dir/sub/b.go": b"go\n",
                "dir/sub/c.txt": b"txt\n"}


@pytest.mark.parametrize("body, want", [
    # `*` never matches `/`: sub/c.txt stays
    pytest.param("COPY --exclude=*.txt dir /t/\n", ["t", "t/a.go", "t/sub", "t/sub/b.go", "t/sub/c.txt"],
                 id="pattern"),
    # a directory takes its contents with it
    pytest.param("COPY --exclude=sub dir /t/\n", ["t", "t/a.go", "t/a.txt"], id="directory"),
    pytest.param("COPY --exclude=**/*.go --exclude=*.txt dir /t/\n", ["t", "t/sub", "t/sub/c.txt"],
                 id="repeated-and-doublestar"),
    # `!` re-includes, inside an excluded directory too
    pytest.param("COPY --exclude=sub --exclude=!sub/b.go dir /t/\n",
                 ["t", "t/a.go", "t/a.txt", "t/sub", "t/sub/b.go"], id="exception"),
    # wildcard matches are left out by name
    pytest.param("COPY --exclude=*.txt dir/a* /t/\n", ["t", "t/a.go"], id="wildcard"),
    pytest.param("ENV X=txt\nCOPY --exclude=*.$X dir/a* /t/\n", ["t", "t/a.go"], id="expanded"),
])
def test_exclude(store_root, tmp_path, body, want):
    b = build(store_root, make_context(tmp_path / "ctx", EXCLUDE_SPEC),
              buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert sorted(line.split(" ")[-1] for line in b.last_layer()) == want


def test_exclude_everything_is_an_error(store_root, tmp_path):
    assert_refused(build(store_root, make_context(tmp_path / "ctx", EXCLUDE_SPEC),
                         buildfile=FROM + "COPY --exclude=*.txt dir/*.txt /t/\n", tag=TAG, check=False),
                   "no source files were specified")


def test_link_is_accepted(store_root, tmp_path):
    b = build(store_root, make_context(tmp_path / "ctx", {"f": b"x\n"}),
              buildfile=FROM + "COPY --link f /f\nCOPY --link=false f /g\n", tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == [f("g", b"x\n")]


DATA = b"downloaded\n"
DATA_SHA = hashlib.sha256(DATA).hexdigest()


def test_add_checksum_ok(store_root, tmp_path, http_files):
    files, base = http_files
    files["file.txt"] = DATA
    b = build(store_root, make_context(tmp_path / "ctx"),
              buildfile=FROM + f"ADD --checksum=sha256:{DATA_SHA} {base}/file.txt /x/\n",
              tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == [d("x"), f("x/file.txt", DATA, 0o600)]


@pytest.mark.parametrize("flag, src, message", [
    pytest.param(f"sha256:{'0' * 64}", "URL", "digest mismatch", id="mismatch"),
    pytest.param(f"sha256:{DATA_SHA}", "f", "checksum requires HTTP(S) or Git sources", id="local-source"),
    pytest.param(DATA_SHA, "URL", "invalid checksum digest format", id="no-algorithm"),
])
def test_add_checksum_refused(store_root, tmp_path, http_files, flag, src, message):
    files, base = http_files
    files["file.txt"] = DATA
    src = f"{base}/file.txt" if src == "URL" else src
    assert_refused(build(store_root, make_context(tmp_path / "ctx", {"f": b"x\n"}),
                         buildfile=FROM + f"ADD --checksum={flag} {src} /x/\n",
                         tag=TAG, check=False), message)


def test_copy_checksum_is_unknown(store_root, tmp_path):
    """A parse error (exit code 2), before anything is built."""
    b = build(store_root, make_context(tmp_path / "ctx", {"f": b"x\n"}),
              buildfile=FROM + f"COPY --checksum=sha256:{DATA_SHA} f /x\n", tag=TAG, check=False)
    assert b.proc.returncode == 2 and "unknown flag: --checksum" in b.proc.stderr, b.proc.stderr


# -- COPY --from ------------------------------------------------------------------------------
def make_source_image(store_root, tmp_path) -> str:
    """src/img:1 with /src owned 1000:1000 and 5:6, a relative and an absolute symlink."""
    build(store_root, make_context(tmp_path / "src" / "ctx"), tag="src/img:1",
          buildfile="FROM pbtest/busybox:base\n"
                    "RUN mkdir -p /src/sub && echo one > /src/a && echo two > /src/sub/b && "
                    "chown 1000:1000 /src/a && chown -R 5:6 /src/sub && chmod 0640 /src/a && "
                    "ln -s a /src/rel && ln -s /src/sub/b /src/abs && ln -s /etc/passwd /src/pw\n")
    return "src/img:1"


@pytest.mark.parametrize("body, want", [
    # ownership and modes are preserved (classic preserveOwnership); a dest dir the copy
    # creates is 0:0 like any new parent (pybuild's choice)
    pytest.param("COPY --from=src/img:1 /src/a /a\n", [f("a", b"one\n", 0o640, "1000:1000")], id="file"),
    pytest.param("COPY --from=src/img:1 /src/sub /t\n",
                 [d("t", owner="0:0"), f("t/b", b"two\n", owner="5:6")], id="dir"),
    # --chown overrides the preserved ids
    pytest.param("COPY --from=src/img:1 --chown=7:7 /src/a /a\n", [f("a", b"one\n", 0o640, "7:7")],
                 id="chown"),
    # a source symlink is followed inside the source image's root: an absolute one too
    pytest.param("COPY --from=src/img:1 /src/abs /x\n", [f("x", b"two\n", owner="5:6")], id="abs-link"),
    pytest.param("COPY --from=src/img:1 /src/rel /y\n", [f("y", b"one\n", 0o640, "1000:1000")], id="rel-link"),
    pytest.param("COPY --from=src/img:1 /src/s* /w/\n", [d("w"), f("w/b", b"two\n", owner="5:6")],
                 id="wildcard"),
])
def test_copy_from_image(store_root, tmp_path, body, want):
    make_source_image(store_root, tmp_path)
    b = build(store_root, make_context(tmp_path / "ctx"), buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == want


def test_copy_from_image_link_to_etc_reads_the_image(store_root, tmp_path):
    """/src/pw -> /etc/passwd is the SOURCE IMAGE's passwd, never the host's."""
    make_source_image(store_root, tmp_path)
    b = build(store_root, make_context(tmp_path / "ctx"),
              buildfile=FROM + "COPY --from=src/img:1 /src/pw /pw\n", tag=TAG, check=False)
    assert_ok(b)
    (line,) = b.last_layer()
    assert line.endswith(" pw") and "root:x:0:0" not in line


def test_copy_from_missing(store_root, tmp_path):
    make_source_image(store_root, tmp_path)
    assert_refused(build(store_root, make_context(tmp_path / "ctx"),
                         buildfile=FROM + "COPY --from=src/img:1 /nosuch /x\n",
                         tag=TAG, check=False), "nosuch")
    assert_refused(build(store_root, make_context(tmp_path / "ctx"),
                         buildfile=FROM + "COPY --from=no/such:image /a /x\n", tag=TAG, check=False),
                   "--from=no/such:image")


def test_copy_from_stage(store_root, tmp_path):
    body = ("FROM pbtest/busybox:base AS first\nRUN echo staged > /s && chown 3:4 /s\n"
            "FROM pbtest/busybox:base\nCOPY --from=first /s /s\nCOPY --from=0 /s /t\n")
    b = build(store_root, make_context(tmp_path / "ctx"), buildfile=body, tag="stage/test:1", check=False)
    assert b.proc.returncode == 0, b.proc.stderr
    layers = b.layers()
    staged = b"staged\n"
    assert layers[-2:] == [[f("s", staged, owner="3:4")], [f("t", staged, owner="3:4")]], layers


# -- heredocs ---------------------------------------------------------------------------------
def test_copy_heredoc(store_root, tmp_path):
    b = build(store_root, make_context(tmp_path / "ctx"),
              buildfile=FROM + "ENV W=world\nCOPY <<EOF /greet\nhello $W\nEOF\n", tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == [f("greet", b"hello world\n", 0o644)]


def test_copy_heredoc_quoted_is_not_expanded(store_root, tmp_path):
    b = build(store_root, make_context(tmp_path / "ctx"),
              buildfile=FROM + "ENV W=world\nCOPY <<'EOF' /d/\nhello $W\nEOF\n", tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == [d("d"), f("d/EOF", b"hello $W\n", 0o644)]


# -- created_by and the cache ---------------------------------------------------------------------
@pytest.mark.parametrize("body, pattern", [
    pytest.param("COPY --chown=1:2 f /f\n", rf"COPY --chown=1:2 file:{HEX} in /f ", id="chown"),
    pytest.param("ENV U=user\nCOPY --chown=$U f /f\n", rf"COPY --chown=user file:{HEX} in /f ", id="expanded"),
    # CL shows no other flag
    pytest.param("COPY --chmod=755 --link --exclude=x f /f\n", rf"COPY file:{HEX} in /f ", id="others-hidden"),
])
def test_created_by(store_root, tmp_path, body, pattern):
    b = build(store_root, make_context(tmp_path / "ctx", {"f": b"x\n"}),
              buildfile=FROM + body, tag=TAG, check=False)
    assert_ok(b)
    assert re.fullmatch(r"layer  /bin/sh -c #\(nop\) " + pattern, b.history()[-1]), b.history()[-1]


@pytest.mark.parametrize("first, second", [
    pytest.param("COPY --chown=1:1 dir /d/\n", "COPY --chown=1:2 dir /d/\n", id="chown"),
    pytest.param("COPY --chmod=644 dir /d/\n", "COPY --chmod=600 dir /d/\n", id="chmod"),
    pytest.param("COPY --exclude=a dir /d/\n", "COPY --exclude=b dir /d/\n", id="exclude"),
    pytest.param("COPY dir /d/\n", "COPY --chmod=644 dir /d/\n", id="flag-added"),
])
def test_cache_misses_when_a_flag_changes(store_root, tmp_path, first, second):
    ctx = make_context(tmp_path / "ctx", {"dir/a": b"a\n", "dir/b": b"b\n"})

    def run(body: str) -> str:
        return build(store_root, ctx, buildfile=FROM + body).proc.stdout

    assert "Using cache" not in run(first)
    assert "Using cache" not in run(second)
    assert "Using cache" in run(first)
    assert "Using cache" in run(second)
