"""Differential over the golden Buildfiles (issue 5): every case in tests/golden/parse and
tests/golden/parse-fail is made runnable (each FROM that is not an earlier stage or `scratch`
becomes pbtest/busybox:base; the context gets the files its ADD/COPY sources name) and built by
docker's classic builder (`DOCKER_BUILDKIT=0 docker build --network none`, on a dockerd this
module starts) and by pybuild.  Docker rejects → pybuild must reject; docker accepts → pybuild
must accept and give the same config (config_view + Volumes/Shell/Healthcheck/StopSignal/OnBuild),
history (kinds + created_by) and rootfs.  When docker fails while running step N, pybuild must
not get past step N either.  Each case prints its two outcomes (see them with -rA)."""

from __future__ import annotations

import difflib
import io
import json
import os
import re
import shlex
import tarfile
from pathlib import Path

import pytest
from buildfixtures import build, make_context
from conftest import REPO, pybuild
from dockerd import DockerDaemon
from imagecheck import config_view, history_lines, mask_source_hash, rootfs_lines

from builder.export.docker_archive import load
from builder.store.store import Store

GOLDEN = REPO / "tests" / "golden"
BASE = "pbtest/busybox:base"

# Cases not compared, one line each: why docker's result cannot be the reference.
# Heredocs, COPY --link/--chmod/--exclude, RUN --network/--mount and ADD --keep-git-dir are
# BuildKit-only: docker 20.10's classic builder rejects the whole file, so it is no reference.
_BK = "BuildKit-only syntax, classic docker rejects the file: "
EXCLUDED: dict[str, str] = {
    "flags-bool-forms": _BK + "COPY --link, ADD --keep-git-dir",
    "flags-copy-add": _BK + "--chmod, --link; and a URL source (no network), --from=build (no such stage)",
    "flags-end-marker": _BK + "RUN --network, --mount",
    "flags-quotes-kept-raw": _BK + "COPY --exclude",
    "heredoc-add": _BK + "heredoc",
    "heredoc-after-continuation": _BK + "heredoc",
    "heredoc-after-flags": _BK + "heredoc, RUN --network",
    "heredoc-backtick-escape": _BK + "heredoc",
    "heredoc-body-raw": _BK + "heredoc",
    "heredoc-copy-multiple": _BK + "heredoc, COPY --chmod",
    "heredoc-crlf": _BK + "heredoc",
    "heredoc-dash-strips-tabs": _BK + "heredoc",
    "heredoc-empty-body": _BK + "heredoc",
    "heredoc-fd": _BK + "heredoc",
    "heredoc-quoted-no-expand": _BK + "heredoc",
    "heredoc-run-basic": _BK + "heredoc",
    "heredoc-several": _BK + "heredoc",
    "heredoc-terminator-trailing-space": _BK + "heredoc",
    "heredoc-with-command": _BK + "heredoc (and busybox has no python3)",
    "onbuild-heredoc": _BK + "heredoc",
    "onbuild-nested-error-column": "differs: classic docker checks ONBUILD's nested instruction only when "
                                   "a child build triggers it; pybuild rejects it at parse (the golden)",
    "onbuild-unknown-nested": "differs: classic docker checks ONBUILD's nested instruction only when a "
                              "child build triggers it; pybuild rejects it at parse (the golden)",
}

CASES = sorted([p.parent for p in GOLDEN.glob("parse/*/Buildfile")] +
               [p.parent for p in GOLDEN.glob("parse-fail/*/Buildfile")],
               key=lambda p: p.name)
assert len({c.name for c in CASES}) == len(CASES), "golden case names must be unique"
assert set(EXCLUDED) <= {c.name for c in CASES}, "EXCLUDED names a case that does not exist"

# config keys beyond imagecheck.config_view that the golden instructions set
EXTRA_KEYS = ("Volumes", "Shell", "Healthcheck", "StopSignal", "OnBuild")

_FROM = re.compile(r"^(\ufeff?[ \t]*from[ \t]+)(.*)$", re.IGNORECASE)
_ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz)$")


def runnable(text: str) -> str:
    """``text`` with every FROM image that is not an earlier stage (or scratch) replaced by BASE."""
    stages: set[str] = set()
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body):]
        m = _FROM.match(body)
        if m:
            words = m.group(2).split()
            i = 0
            while i < len(words) and words[i].startswith("--"):
                i += 1
            if i < len(words):
                image = words[i]
                if image.lower() not in stages and image != "scratch" and "$" not in image:
                    words[i] = BASE
                if i + 2 < len(words) and words[i + 1].lower() == "as":
                    stages.add(words[i + 2].lower())
            body = m.group(1) + " ".join(words)
        out.append(body + end)
    return "".join(out)


def logical_lines(text: str) -> list[str]:
    """Instruction lines with continuations joined and comments dropped (enough to find sources)."""
    escape = "\\"
    m = re.match(r"\ufeff?\s*#\s*escape\s*=\s*(\S)", text, re.IGNORECASE)
    if m:
        escape = m.group(1)
    out, cur = [], None
    for raw in text.replace("\r\n", "\n").split("\n"):
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        piece = raw.rstrip()
        cont = piece.endswith(escape)
        if cont:
            piece = piece[:-1]
        cur = piece if cur is None else cur + piece
        if not cont:
            out.append(cur.strip())
            cur = None
    if cur is not None:
        out.append(cur.strip())
    return out


def sources(text: str) -> tuple[list[str], bool]:
    """The context paths ADD/COPY name (not --from, not heredocs), and whether any is a URL."""
    found, url = [], False
    for line in logical_lines(text):
        words = line.split(None, 1)
        if len(words) < 2 or words[0].lower() not in ("add", "copy"):
            continue
        rest = words[1].strip()
        try:
            args = shlex.split(rest)
        except ValueError:
            continue
        flags = []
        while args and args[0].startswith("--"):
            flag = args.pop(0)
            if flag == "--":
                break
            flags.append(flag)
        if any(f.startswith("--from") for f in flags):
            continue
        if "[" in rest:                       # JSON form: ["src", ..., "dest"]
            try:
                parsed = json.loads(rest[rest.index("["):])
                if isinstance(parsed, list):
                    args = [str(a) for a in parsed]
            except json.JSONDecodeError:
                pass
        for src in args[:-1]:
            if src.startswith("<<"):
                continue
            if re.match(r"^[a-z]+://", src) or src.startswith("git@"):
                url = True
                continue
            found.append(src)
    return found, url


def golden_context(case: Path, ctx: Path) -> tuple[str, bool]:
    """Make ``ctx`` hold a file for each ADD/COPY source of the case's Buildfile (a directory
    with inner.txt, a one-file archive, or a text file); return (the runnable Buildfile text,
    whether it names a URL source)."""
    text = runnable((case / "Buildfile").read_bytes().decode("utf-8"))
    srcs, url = sources(text)
    spec: dict[str, bytes | str] = {}
    for src in srcs:
        name = re.sub(r"[*?]", "x", src).lstrip("/")
        if name in ("", ".") or (ctx / name) in {q for p in spec for q in [ctx / p, *(ctx / p).parents]}:
            continue                            # made already, as a file or a directory
        if src.endswith("/") or name in ("app", "src", "dir"):
            spec[f"{name}/inner.txt"] = f"in {name}\n"
        elif _ARCHIVE.search(name):
            mode = {"tar": "w", "gz": "w:gz", "tgz": "w:gz", "bz2": "w:bz2", "tbz2": "w:bz2",
                    "xz": "w:xz", "txz": "w:xz"}[name.rsplit(".", 1)[1]]
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode=mode) as tar:
                data = f"from {name}\n".encode()
                info = tarfile.TarInfo("data/hello.txt")
                info.size, info.mode, info.mtime = len(data), 0o644, 1700000000
                tar.addfile(info, io.BytesIO(data))
            spec[name] = buf.getvalue()
        else:
            spec[name] = f"{name}\n"
    make_context(ctx, spec)
    return text, url


@pytest.fixture(scope="module")
def docker(session_store, tmp_path_factory):
    daemon = DockerDaemon().start()
    try:
        tmp = tmp_path_factory.mktemp("gbase")
        pybuild("save", BASE, "-o", str(tmp / "base.tar"), root=session_store)
        daemon.run("load", "-i", str(tmp / "base.tar"))
        yield daemon
    finally:
        daemon.stop()


def view(store: Store, image_id: str) -> dict:
    cfg = json.loads(store.image_config(image_id))
    c = cfg.get("config") or {}
    return {"config": config_view(store, image_id),
            "extra": {k: c.get(k) for k in EXTRA_KEYS},
            "history": [mask_source_hash(h) for h in history_lines(store, image_id, skip=0)],
            "rootfs": rootfs_lines(store, image_id)}


@pytest.mark.parametrize("case", [c for c in CASES if c.name not in EXCLUDED], ids=lambda c: c.name)
def test_golden_same_as_docker_classic(case, docker, session_store, tmp_path):
    text, url = golden_context(case, tmp_path / "ctx")
    assert not url, f"{case.name} names a URL source: add it to EXCLUDED"
    buildfile = tmp_path / "Buildfile"
    buildfile.write_bytes(text.encode("utf-8"))
    tag = f"golden/{case.name}"
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    theirs_proc = docker.run("build", "--network", "none", "-f", str(buildfile), "-t", tag,
                             str(tmp_path / "ctx"), env=env, check=False)
    ours_proc = build(session_store, tmp_path / "ctx", buildfile=buildfile, tag=tag, check=False).proc
    docker_said = (theirs_proc.stdout + theirs_proc.stderr)[-1500:]
    ours_said = (ours_proc.stdout + ours_proc.stderr)[-1500:]
    print(f"outcome {case.name}: docker={theirs_proc.returncode} pybuild={ours_proc.returncode}\n"
          f"  docker: {last_error(docker_said)}\n  pybuild: {last_error(ours_said)}")
    if theirs_proc.returncode != 0:
        assert ours_proc.returncode != 0, \
            f"docker rejected, pybuild accepted.\n--- docker:\n{docker_said}\n--- pybuild:\n{ours_said}"
        # docker failed while running step N (not while parsing): pybuild must not get past
        # step N (failing at N, or earlier at parse, is the same rejection)
        steps = re.findall(r"^Step (\d+)/\d+ :", theirs_proc.stdout, re.MULTILINE)
        ours_step = re.search(r"error: step (\d+)/\d+", ours_said)
        if steps and ours_step:
            assert ours_step.group(1) == steps[-1], \
                f"docker failed at step {steps[-1]}, pybuild did not.\n--- docker:\n{docker_said}\n" \
                f"--- pybuild:\n{ours_said}"
        return
    assert ours_proc.returncode == 0, \
        f"docker accepted, pybuild rejected.\n--- docker:\n{docker_said}\n--- pybuild:\n{ours_said}"
    saved = tmp_path / "docker.tar"
    docker.run("save", "-o", str(saved), tag)
    theirs = Store(tmp_path / "docker-store")
    [(_, their_id)] = load(theirs, saved)
    ours = Store(session_store)
    mine, ref = view(ours, ours.resolve(tag)), view(theirs, their_id)
    assert mine == ref, "differs from docker (- docker, + pybuild):\n" + describe(ref, mine)


def last_error(output: str) -> str:
    """The line of a build's output that says why it failed (or its last line)."""
    lines = [line for line in output.splitlines() if line.strip() and "legacy builder" not in line
             and "BuildKit is currently" not in line and "environment-variable" not in line]
    for line in lines:
        if "error" in line.lower() or "failed" in line.lower() or "returned a non-zero" in line:
            return line.strip()
    return lines[-1].strip() if lines else ""


def describe(ref: dict, mine: dict) -> str:
    out = []
    for part in ref:
        if ref[part] == mine[part]:
            continue
        if isinstance(ref[part], dict):
            for k in ref[part]:
                if ref[part][k] != mine[part][k]:
                    out.append(f"{part}.{k}: - {ref[part][k]!r}\n{' ' * len(part + k)}   + {mine[part][k]!r}")
        else:
            out.append(f"{part}:")
            out += [f"  {d}" for d in difflib.unified_diff(ref[part], mine[part], lineterm="", n=1)][2:]
    return "\n".join(out)
