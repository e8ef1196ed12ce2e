""".dockerignore: docker's reading and matching rules (moby/patternmatcher) as tables, and
end-to-end builds where ignored files are absent for ADD/COPY."""

from __future__ import annotations

import pytest
from buildfixtures import build, make_context
from test_addcopy import FROM, TAG, assert_ok, assert_refused, d, f

from builder.context.dockerignore import PatternMatcher, go_clean, load, read_patterns
from builder.errors import ContextError


@pytest.mark.parametrize("text, want", [
    # comments only at column 1; lines trimmed; blanks skipped
    pytest.param("# c\n  a  \n\n #not-comment\n", ["a", "#not-comment"], id="comments-and-trim"),
    # filepath.Clean, leading / removed, also after !
    pytest.param("/a/b/\n./c//d\n!/e\n! f\n", ["a/b", "c/d", "!e", "!f"], id="clean"),
    pytest.param("\ufeffa\n", ["a"], id="bom"),
    pytest.param("a/../../b\n", ["../b"], id="dotdot-kept-as-go-does"),
    pytest.param("/\n", ["/"], id="root"),
])
def test_read_patterns(text, want):
    assert read_patterns(text) == want


@pytest.mark.parametrize("patterns, path, excluded", [
    # a pattern excludes the path itself or anything under a matching parent
    (["dir"], "dir", True),
    (["dir"], "dir/a/b", True),
    (["dir"], "dirx", False),
    (["dir"], "x/dir", False),                       # anchored at the context root
    # `*` and `?` never cross `/`
    (["*.txt"], "a.txt", True),
    (["*.txt"], "sub/a.txt", False),
    (["*/*.txt"], "sub/a.txt", True),
    (["a?c"], "abc", True),
    (["a?c"], "a/c", False),
    # `**` is any number of directories, zero included
    (["**/*.log"], "a.log", True),
    (["**/*.log"], "x/y/a.log", True),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["a/**"], "a/x/y", True),
    (["**"], "anything/at/all", True),
    # classes, negated classes and escapes
    (["f[0-9]"], "f7", True),
    (["f[^0-9]"], "f7", False),
    (["f[^0-9]"], "fx", True),
    (["arr[[]0]"], "arr[0]", True),
    (["a\\*b"], "a*b", True),
    (["a\\*b"], "axb", False),
    # regex characters are literal
    (["a.b"], "axb", False),
    (["a+(b)"], "a+(b)", True),
    # the LAST matching line decides; `!` re-includes
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "CHANGES.md", True),
    (["!README.md", "*.md"], "README.md", True),
    (["dir", "!dir/keep"], "dir/keep", False),
    (["dir", "!dir/keep"], "dir/keep/deep", False),
    (["dir", "!dir/keep"], "dir/other", True),
    (["dir", "!dir/keep", "dir/keep/no"], "dir/keep/no", True),
    # docker/cli#2919: re-including files below an excluded dir
    (["docs", "!docs/**/*.py"], "docs/a/b.py", False),
    (["docs", "!docs/**/*.py"], "docs/a/b.txt", True),
    # nothing matches: kept
    ([], "a", False),
    (["x"], "a", False),
])
def test_matching(patterns, path, excluded):
    assert PatternMatcher.parse(patterns).excluded(path) is excluded


def test_lone_bang_is_an_error():
    with pytest.raises(ContextError, match='illegal exclusion pattern: "!"'):
        PatternMatcher.parse(read_patterns("a\n!\n"))


def test_bad_class_is_an_error():
    with pytest.raises(ContextError, match="syntax error in pattern"):
        PatternMatcher.parse(["a[b"])


@pytest.mark.parametrize("path, want", [("//a", "/a"), ("a//b/", "a/b"), ("", "."), ("./a/./b", "a/b"),
                                        ("a/..", ".")])
def test_go_clean(path, want):
    assert go_clean(path) == want


def test_load_prefers_buildfile_dockerignore(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / ".dockerignore").write_text("from-context\n")
    buildfile = tmp_path / "Buildfile"
    assert load(buildfile, ctx).excluded("from-context")
    (tmp_path / "Buildfile.dockerignore").write_text("from-buildfile\n")
    rules = load(buildfile, ctx)
    assert rules.excluded("from-buildfile") and not rules.excluded("from-context")
    assert not load(tmp_path / "Other", tmp_path / "none")


# -- end to end ------------------------------------------------------------------------------
SPEC = {
    ".dockerignore": b"# build junk\n*.log\nsecret\nbuild\n!build/keep.txt\n**/tmp\n",
    "app.py": b"app\n", "debug.log": b"log\n", "secret": b"s3cret\n",
    "build/out.o": b"o\n", "build/keep.txt": b"keep\n",
    "src/a.py": b"a\n", "src/tmp/x": b"x\n", "src/deep/tmp/y": b"y\n",
}


def test_copy_dot_leaves_ignored_files_out(store_root, tmp_path):
    b = build(store_root, make_context(tmp_path / "ctx", SPEC),
              buildfile=FROM + "COPY . /app/\n", tag=TAG, check=False)
    assert_ok(b)
    names = [line.split(" ")[-1] for line in b.last_layer()]
    assert names == ["app", "app/.dockerignore", "app/app.py", "app/build", "app/build/keep.txt",
                     "app/src", "app/src/a.py", "app/src/deep"], names


@pytest.mark.parametrize("src", ["secret", "debug.log", "build/out.o", "src/tmp/x"])
def test_ignored_source_is_not_found(store_root, tmp_path, src):
    assert_refused(build(store_root, make_context(tmp_path / "ctx", SPEC),
                         buildfile=FROM + f"COPY {src} /x\n", tag=TAG, check=False),
                   "excluded by .dockerignore")


def test_wildcard_skips_ignored(store_root, tmp_path):
    spec = {".dockerignore": b"b*\n.dockerignore\n", "a": b"a\n", "b1": b"b\n"}
    b = build(store_root, make_context(tmp_path / "ctx", spec),
              buildfile=FROM + "COPY * /w/\n", tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == [d("w"), f("w/a", b"a\n")]


def test_wildcard_matching_only_ignored_is_an_error(store_root, tmp_path):
    assert_refused(build(store_root, make_context(tmp_path / "ctx", SPEC),
                         buildfile=FROM + "COPY *.log /w/\n",
                         tag=TAG, check=False), "no source files were specified")


def test_reincluded_file_in_ignored_dir(store_root, tmp_path):
    b = build(store_root, make_context(tmp_path / "ctx", SPEC),
              buildfile=FROM + "COPY build /b/\n", tag=TAG, check=False)
    assert_ok(b)
    assert b.last_layer() == [d("b"), f("b/keep.txt", b"keep\n")]


def test_ignore_change_misses_the_cache(store_root, tmp_path):
    b1 = build(store_root, make_context(tmp_path / "ctx", {**SPEC, ".dockerignore": b"src/a.py\n"}),
               buildfile=FROM + "COPY src /s/\n", tag=TAG, check=False)
    b2 = build(store_root, make_context(tmp_path / "ctx", {**SPEC, ".dockerignore": b"src/tmp\n"}),
               buildfile=FROM + "COPY src /s/\n", tag=TAG, check=False)
    assert_ok(b1)
    assert_ok(b2)
    assert "s/a.py" not in " ".join(b1.last_layer()) and "s/tmp" in " ".join(b1.last_layer())
    assert "s/a.py" in " ".join(b2.last_layer()) and "s/tmp" not in " ".join(b2.last_layer())
