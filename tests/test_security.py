"""The attack corpus (issue 7): hostile layers, hostile ADD archives, hostile build contexts, a
RUN looking for the store, and a parser fuzz of ≥ 10,000 Buildfiles.

These rows add to the ones in tests/test_unpack.py (HOSTILE, EXTRACT_HOSTILE) and
tests/test_addcopy.py (ERROR_ROWS, test_dest_through_symlink); docs/security.md counts them.
Every row: a sentinel file beside the target and a snapshot of the parent dir are unchanged
afterwards, and the outcome is a LayerError (a clear message) or a safe result inside the root.
Four bugs this corpus found (a truncated member, a NUL in a name, a sparse member claiming
16 GiB, Unicode white-space lines in the parser) are fixed; their rows stay as regressions.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from buildfixtures import build, make_context
from hypothesis import HealthCheck, given, settings, strategies as st
from layerfixtures import make_tar, member, needs_root

from builder.buildfile.parse import parse_buildfile
from builder.errors import BuildfileError, LayerError
from builder.layer.unpack import extract_archive, unpack_layer

REG, DIR, SYM, LNK = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
CHR, BLK = tarfile.CHRTYPE, tarfile.BLKTYPE
FROM = "FROM pbtest/busybox:base\n"
SENTINEL = "SENTINEL"            # in a linkname: replaced by the sentinel's absolute path


def huge_claim() -> list:
    """A header claiming 1 TB of data followed by one block: the archive ends early."""
    info = tarfile.TarInfo("big")
    info.size = 10 ** 12
    return [("raw", info.tobuf(tarfile.PAX_FORMAT) + b"x" * 512 + b"\0" * 1024)]


def pax_name(name: str, kind: bytes = REG, **pax: str) -> tuple[tarfile.TarInfo, bytes]:
    info, data = member("placeholder", kind, data=b"x" if kind == REG else b"")
    info.pax_headers = {"path": name, **pax}
    return info, data


def loop(n: int = 10, prefix: str = "") -> list:
    """``l0 -> l1 -> … -> l{n-1} -> l0``: a loop of n symlinks."""
    return [member(f"{prefix}l{i}", SYM, linkname=f"l{(i + 1) % n}") for i in range(n)]


def chain_out(n: int = 10) -> list:
    """``l0 -> l1 -> … -> l{n-1} -> ../../../..``: a chain that ends climbing out of the root."""
    return [member(f"l{i}", SYM, linkname=f"l{i + 1}" if i < n - 1 else "../../../..") for i in range(n)]



# unpack_layer: one layer tar into a fresh dir.  Outcome: "raise", "ok" or a path that must exist
# inside the target (where a clamped entry landed).
LAYER_ROWS = [
    # overwriting a hardlink-to-symlink replaces the name; the host file it points at is untouched
    pytest.param([member("s", SYM, linkname=SENTINEL), member("h", LNK, linkname="s"),
                  member("h", data=b"pwn")], "h", id="hardlink-to-symlink-then-overwrite"),
    pytest.param([member("s", SYM, linkname="/"), member("h", LNK, linkname="s"),
                  member("h/sentinel", data=b"pwn")], "sentinel", id="hardlink-to-symlink-to-root-then-file"),
    pytest.param([member("..", SYM, linkname="/")], "raise", id="symlink-named-dotdot"),
    # "d/." is d itself: the dir becomes a symlink to /, which is clamped to the target
    pytest.param([member("d", DIR), member("d/.", SYM, linkname="/"), member("d/sentinel", data=b"pwn")],
                 "sentinel", id="symlink-named-dot-in-subdir"),
    pytest.param([member("d", DIR), member("d/f", data=b"1"), member("d", SYM, linkname="/"),
                  member("d/sentinel", data=b"pwn")], "sentinel", id="dir-becomes-symlink-mid-archive"),
    pytest.param([member("../.wh.sentinel")], "raise", id="whiteout-aimed-at-dotdot"),
    pytest.param([member("a/../../.wh.sentinel")], "raise", id="whiteout-aimed-at-dotdot-inner"),
    # ".wh.." then ".." then "x": whatever it becomes, it stays inside
    pytest.param([member(".wh.../x", data=b"x")], "ok", id="whiteout-dots-then-name"),
    pytest.param([member("l", SYM, linkname="/"), member("l/.wh.sentinel")], "sentinel",
                 id="whiteout-through-symlink-to-root"),
    pytest.param([member("l", SYM, linkname=SENTINEL), member("l/.wh.x")], "raise",
                 id="whiteout-through-symlink-to-host-file"),
    pytest.param([member(".wh..wh..opq")], ".", id="opaque-marker-in-root"),
    pytest.param([member("h", LNK, linkname="x", pax={"linkpath": "/etc/shadow"})], "raise",
                 id="pax-linkpath-absolute-hardlink"),
    pytest.param([member("a", data=b"1"), member("a", LNK, linkname="a")], "raise", id="hardlink-to-itself"),
    pytest.param(huge_claim(), "raise", id="size-claim-far-beyond-data"),
    pytest.param([member("a\nb", data=b"x")], "a\nb", id="name-with-newline"),
    pytest.param([pax_name("a\0b")], "raise", id="pax-name-with-nul"),
    pytest.param([*loop(), member("l0/x", data=b"x")], "raise", id="symlink-loop-10"),
    pytest.param([*chain_out(), member("l0/sentinel", data=b"pwn")], "sentinel",
                 id="symlink-chain-10-climbing-out"),
    pytest.param([member("/".join(["a"] * 3000) + "/f", data=b"x")], "raise", id="nesting-3000-deep"),
    pytest.param([member("/".join(["a"] * 200) + "/f", data=b"x")], "ok", id="nesting-200-deep"),
    pytest.param([member(f"d{i % 50}/{i}") for i in range(5000)], "ok", id="tar-bomb-5000-entries"),
]


def guarded(tmp_path: Path, members: list, target: Path, action) -> object:
    """Run ``action(tar_bytes)`` with a sentinel beside ``target``; assert nothing outside changed."""
    sentinel = tmp_path / "sentinel"
    sentinel.write_bytes(b"safe")
    members = [m for m in members]
    data = b"".join(m[1] for m in members) if members and members[0][0] == "raw" else make_tar(*[
        (info, d) if info.linkname != SENTINEL else member(info.name, SYM, linkname=str(sentinel))
        for info, d in members])
    before = snapshot(tmp_path, skip=target.relative_to(tmp_path).parts[0])
    t0 = time.monotonic()
    try:
        return action(data)
    finally:
        assert time.monotonic() - t0 < 60, "bounded time"
        assert sentinel.read_bytes() == b"safe"
        assert snapshot(tmp_path, skip=target.relative_to(tmp_path).parts[0]) == before


def snapshot(parent: Path, *, skip: str) -> list:
    out = []
    for p in sorted(parent.iterdir()):
        if p.name == skip:
            continue
        st = os.lstat(p)
        out.append((p.name, st.st_mode, st.st_size, st.st_mtime_ns, st.st_nlink))
    return out


@needs_root
@pytest.mark.parametrize("members, outcome", LAYER_ROWS)
def test_hostile_layer(tmp_path, members, outcome):
    target = tmp_path / "t" / "layer"
    target.parent.mkdir()
    if outcome == "raise":
        with pytest.raises(LayerError):
            guarded(tmp_path, members, target, lambda data: unpack_layer(io.BytesIO(data), target))
    else:
        guarded(tmp_path, members, target, lambda data: unpack_layer(io.BytesIO(data), target))
        if outcome != "ok":
            assert os.path.lexists(target / outcome)
    assert os.listdir(tmp_path / "t") == ["layer"]


@needs_root
def test_opaque_marker_in_root_marks_only_the_layer_root(tmp_path):
    target = tmp_path / "layer"
    unpack_layer(io.BytesIO(make_tar(member(".wh..wh..opq"))), target)
    assert os.getxattr(target, "trusted.overlay.opaque") == b"y"
    assert os.listdir(target) == []


@needs_root
def test_sparse_claim_does_not_fill_the_disk(tmp_path):
    """A PAX 1.0 sparse member of one byte at offset 16 GiB - 1: its holes must not be written."""
    info = tarfile.TarInfo("sparse")
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "sparse",
                        "GNU.sparse.realsize": str(2 ** 34)}
    sparse_map = b"1\n%d\n1\n" % (2 ** 34 - 1)
    body = sparse_map.ljust(512, b"\0") + b"x".ljust(512, b"\0")
    info.size = len(body)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(body))
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], check=True)
    try:
        try:
            unpack_layer(io.BytesIO(buf.getvalue()), mnt / "layer")
        except LayerError:
            pass                                   # a clear refusal is fine too
        used = sum(os.lstat(p).st_blocks * 512 for p in (mnt / "layer").rglob("*"))
        assert used < 1 << 20, f"{used} bytes written for a 1 KB archive"
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# extract_archive: ADD of a local archive into dest /app of a rootfs (`tar -x` semantics).
ARCHIVE_ROWS = [
    # device nodes are image content (docker's ADD keeps them); they land inside the rootfs only
    pytest.param([member("null", CHR, dev=(1, 3))], "app/null", id="char-device"),
    pytest.param([member("sda", BLK, dev=(8, 0))], "app/sda", id="block-device"),
    pytest.param([member("c00", CHR, dev=(0, 0))], "app/c00", id="char-0-0-is-not-a-whiteout-here"),
    # absolute hardlink targets are relative to dest: /etc/shadow of the host is never linked
    pytest.param([member("h", LNK, linkname="/etc/shadow")], "raise", id="hardlink-to-etc-shadow"),
    pytest.param([member("s", SYM, linkname=SENTINEL), member("h", LNK, linkname="s"),
                  member("h", data=b"pwn")], "app/h", id="hardlink-to-symlink-then-overwrite"),
    pytest.param([member("l", SYM, linkname="../../../.."), member("l/sentinel", data=b"pwn")],
                 "sentinel", id="symlink-dotdot-then-file"),
    pytest.param([*loop(), member("l0/x", data=b"x")], "raise", id="symlink-loop-10"),
    pytest.param([*chain_out(), member("l0/sentinel", data=b"pwn")], "sentinel",
                 id="symlink-chain-10-climbing-out"),
    # whiteout spellings are plain names in an ADD archive, never deletions
    pytest.param([member(".wh.x"), member(".wh..wh..opq")], "app/.wh..wh..opq", id="whiteout-names-are-files"),
    pytest.param([member(".wh..")], "app/.wh..", id="whiteout-dotdot-name-is-a-plain-file"),
    pytest.param(huge_claim(), "raise", id="size-claim-far-beyond-data"),
    pytest.param([member("a\nb", data=b"x")], "app/a\nb", id="name-with-newline"),
    pytest.param([pax_name("a\0b")], "raise", id="pax-name-with-nul"),
    pytest.param([member("/".join(["a"] * 3000) + "/f", data=b"x")], "raise", id="nesting-3000-deep"),
    pytest.param([member(f"d{i % 50}/{i}") for i in range(5000)], "ok", id="tar-bomb-5000-entries"),
]


@needs_root
@pytest.mark.parametrize("members, outcome", ARCHIVE_ROWS)
def test_hostile_add_archive(tmp_path, members, outcome):
    root = tmp_path / "root"
    root.mkdir()
    if outcome == "raise":
        with pytest.raises(LayerError):
            guarded(tmp_path, members, root, lambda data: extract_archive(io.BytesIO(data), root, "/app"))
    else:
        guarded(tmp_path, members, root, lambda data: extract_archive(io.BytesIO(data), root, "/app"))
        if outcome != "ok":
            assert os.path.lexists(root / outcome)


# Whole builds through the CLI: (context spec, Buildfile body, expected stderr fragment or None
# for success).  "outside" beside the context is the sentinel.
def _symlink_out(ctx: Path) -> None:
    os.symlink("../outside", ctx / "pw")


def _archive_link_out(ctx: Path) -> None:
    (ctx.parent / "outside.tar").write_bytes(make_tar(member("stolen", data=b"x")))
    os.symlink("../outside.tar", ctx / "a.tar")


def _whiteout_named(ctx: Path) -> None:
    (ctx / ".wh.foo").write_text("x\n")


def _dir_with_whiteout_named(ctx: Path) -> None:
    (ctx / "d").mkdir()
    (ctx / "d" / ".wh..wh..opq").write_text("x\n")


def _loop_in_context(ctx: Path) -> None:
    for i in range(10):
        os.symlink(f"l{(i + 1) % 10}", ctx / f"l{i}")


BUILD_ROWS = [
    pytest.param(_symlink_out, "ADD pw /x\n", "forbidden path outside the build context",
                 id="add-source-symlink-out-of-context"),
    pytest.param(_archive_link_out, "ADD a.tar /x/\n", "forbidden path outside the build context",
                 id="add-archive-symlink-out-of-context"),
    pytest.param(_whiteout_named, "COPY .wh.foo /x/\n", ".wh.", id="copy-whiteout-named-file"),
    pytest.param(_dir_with_whiteout_named, "COPY d /d/\n", ".wh.", id="copy-dir-holding-opaque-name"),
    pytest.param(_loop_in_context, "COPY l0 /x\n", "", id="copy-symlink-loop-10"),
    # ADD dest through a 10-level loop made by a RUN in the image
    pytest.param(lambda ctx: (ctx / "f").write_text("x\n"),
                 "RUN " + " && ".join(f"ln -s /l{(i + 1) % 10} /l{i}" for i in range(10)) + "\nADD f /l0/x\n",
                 "", id="add-dest-through-symlink-loop-10"),
]


@needs_root
@pytest.mark.parametrize("make, body, needle", BUILD_ROWS)
def test_hostile_context(store_root, tmp_path, make, body, needle):
    ctx = make_context(tmp_path / "ctx", {"Buildfile": FROM + body})
    (tmp_path / "outside").write_text("secret\n")
    make(ctx)
    before = snapshot(tmp_path, skip="store")
    proc = build(store_root, ctx, tag="hostile", check=False).proc
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("pybuild: error: ") and needle in last, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "outside").read_text() == "secret\n"
    assert snapshot(tmp_path, skip="store") == before


@needs_root
def test_run_cannot_see_or_reach_the_store(store_root, tmp_path):
    """From inside the chroot the store's path does not exist, and no /proc/<pid>/root leads
    to it: the pid namespace shows only the RUN's own processes, whose root is the merged dir."""
    store = str(store_root.resolve())
    ctx = make_context(tmp_path / "ctx", {"Buildfile": (
        FROM + f"RUN test -e {store} && echo SEEN-store; "
        f"for p in /proc/[0-9]*; do test -e $p/root{store} && echo SEEN-$p; "
        f"test -e $p/root{store}/blobs && echo SEEN-$p-blobs; done; "
        f"test -e /proc/1/root/../../..{store} && echo SEEN-up; "
        f"ls /proc | grep -c '^[0-9]' | sed s/^/PIDS=/; echo done\n")})
    proc = build(store_root, ctx, "--no-cache", tag="peek").proc
    said = [line.split("] ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("[")]
    assert [line for line in said if line.startswith("SEEN")] == [], proc.stdout
    assert "done" in said
    pids = int(next(line for line in said if line.startswith("PIDS=")).removeprefix("PIDS="))
    assert pids <= 5, "the RUN sees the host's processes: no pid namespace"


# == the parser fuzz: ≥ 10,000 generated and mutated Buildfiles =================================
SEEDS = [
    "FROM alpine:3.19 AS build\nARG V=1\nENV A=$V B=\"two words\"\nRUN echo $A \\\n  && echo b\n"
    "COPY --chown=1:1 --from=build /a /b/\nCMD [\"sh\", \"-c\", \"echo\"]\n",
    "# escape=`\nFROM x\nRUN echo a `\n  b\nSHELL [\"cmd\", \"/S\"]\n",
    "FROM a\nRUN <<EOF\necho hi\nEOF\nCOPY <<-'E' /f\n\tbody\nE\nHEALTHCHECK --interval=5s CMD true\n",
    "ARG BASE=a\nFROM ${BASE:-b}\nONBUILD RUN x\nVOLUME [\"/v\"]\nEXPOSE 80/tcp 53/udp\nUSER 1:2\n"
    "WORKDIR /w\nLABEL a=b \"c d\"=e\nSTOPSIGNAL 9\nENTRYPOINT [\"/bin/x\"]\nADD --chmod=755 a b\n",
]
#: Characters str.split() takes for white space beyond " \t\r\n" (\v, \f, \x1c-\x1f, U+0085,
#: U+00A0, U+2028, …): a line of only these once crashed the parser (test_unicode_whitespace_line).
_UNSPLIT = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and c not in " \t\r\n")
_ALPHABET = ("FROMRUNCOPYADD ARGENV\\\n\r\t \"'`$={}[]:-#<>/.,0123456789abcxyz\0é\u00ff\U0001f600"
             + _UNSPLIT[:8] + "\u0085\u00a0\u2028")


@st.composite
def buildfiles(draw) -> str:
    """A seed Buildfile mutated by up to 12 edits (insert, delete, replace, duplicate a line),
    or pure noise from Buildfile-ish tokens."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(alphabet=_ALPHABET, max_size=200))
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 12))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.integers(0, 3))
        if op == 0:
            text = text[:pos] + draw(st.text(alphabet=_ALPHABET, min_size=1, max_size=8)) + text[pos:]
        elif op == 1:
            text = text[:pos] + text[pos + draw(st.integers(1, 10)):]
        elif op == 2:
            text = text[:pos] + draw(st.sampled_from(list(_ALPHABET))) + text[pos + 1:]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            text = "\n".join(lines[:i] + [lines[i]] + lines[i:])
    return text


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)   # the same 10,000 cases every run: CI never fails on luck
@given(buildfiles())
def test_parser_fuzz_10000(text: str) -> None:
    try:
        parse_buildfile(text, file="Buildfile")
    except BuildfileError as e:
        assert e.line >= 1 and e.column >= 1, (e.line, e.column, str(e))


@pytest.mark.parametrize("text", [
    pytest.param("FROM a\nENV\x1f\n A=1\n", id="env-then-unit-separator"),     # found by the fuzz
    pytest.param("FROM a\nONBUILD \x1f\n", id="onbuild-of-white-space"),
    pytest.param("FROM a\nLABEL\x85x\n", id="label-nel"),
])
def test_unicode_white_space_inside_an_instruction(text: str) -> None:
    """White space str.split() knows but the grammar does not: a positioned error, never a crash."""
    try:
        parse_buildfile(text, file="Buildfile")
    except BuildfileError as e:
        assert e.line == 2 and e.column >= 1


@pytest.mark.parametrize("char", list(_UNSPLIT), ids=[f"U+{ord(c):04X}" for c in _UNSPLIT])
def test_unicode_whitespace_line(char: str) -> None:
    try:
        parse_buildfile(f"FROM a\n{char}\n", file="Buildfile")
    except BuildfileError as e:
        assert e.line >= 1 and e.column >= 1


def test_parser_fuzz_reaches_both_outcomes() -> None:
    """The generator is not degenerate: some mutants parse and some are rejected."""
    rng = random.Random(7)
    outcomes = set()
    for _ in range(300):
        text = rng.choice(SEEDS)
        pos = rng.randrange(len(text))
        text = text[:pos] + rng.choice(["", "\\", "\"", "[", "$", "\n"]) + text[pos + rng.randrange(3):]
        try:
            parse_buildfile(text, file="Buildfile")
            outcomes.add("ok")
        except BuildfileError:
            outcomes.add("rejected")
    assert outcomes == {"ok", "rejected"}
