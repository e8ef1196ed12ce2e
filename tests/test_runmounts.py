"""``RUN --mount`` builds with what only pybuild can show (docker 20.10's BuildKit has no tmpfs
``size``, no secret ``env``) and what a differential cannot see: the host side (the context
after an ``rw`` bind, paths a RUN must never reach through a mount, nothing left mounted),
and what the cache key takes from a mount.  BuildKit comparisons of every mount type and
option are in test_buildkit_differential.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildfixtures import File, Link, build, make_context, pybuild
from imagecheck import mounts_under

FROM = "FROM pbtest/busybox:base\n"


def outputs(built, step: int) -> list[str]:
    prefix = f"[{step}/"
    return [line.split("] ", 1)[1] for line in built.proc.stdout.splitlines() if line.startswith(prefix)]


def test_tmpfs_size(session_store, tmp_path):
    """size= is the tmpfs's size: df shows it, and writing past it fails (ENOSPC)."""
    built = build(session_store, make_context(tmp_path / "ctx"), "--no-cache", buildfile=FROM +
                  "RUN --mount=type=tmpfs,target=/t,size=1m df -k /t | tail -1 | awk '{print $2}'; "
                  "dd if=/dev/zero of=/t/big bs=1024 count=2048 2>&1 | grep -o 'No space left on device'\n")
    assert outputs(built, 2) == ["1024", "No space left on device"]


def test_secret_env_is_this_runs_only(session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    built = build(session_store, ctx, "--no-cache", "--secret", "id=tok,env=PB_TEST_TOKEN", tag="rm/env",
                  env={"PB_TEST_TOKEN": "value-of-the-token"}, buildfile=FROM +
                  "RUN --mount=type=secret,id=tok,env=TOKEN test \"$TOKEN\" = value-of-the-token && echo seen; "
                  "ls /run/secrets 2>&1; true\nRUN echo \"next: [$TOKEN]\"\n")
    assert outputs(built, 2) == ["seen", "ls: /run/secrets: No such file or directory"]
    assert outputs(built, 3) == ["next: []"]
    assert "TOKEN" not in str(built.config()["config"].get("Env"))


def test_rw_bind_leaves_the_context_as_it_was(session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx", {"d/keep": "k\n", "d/gone": "g\n", "f.txt": "f\n"})
    before = sorted(p.relative_to(ctx).as_posix() + ":" + (p.read_text() if p.is_file() else "")
                    for p in ctx.rglob("*"))
    build(session_store, ctx, "--no-cache", buildfile=FROM +
          "RUN --mount=type=bind,source=d,target=/d,rw --mount=type=bind,source=f.txt,target=/f,rw "
          "rm /d/gone && echo new > /d/new && echo changed > /d/keep && echo more >> /f\n")
    after = sorted(p.relative_to(ctx).as_posix() + ":" + (p.read_text() if p.is_file() else "")
                   for p in ctx.rglob("*"))
    assert after == before
    assert mounts_under(ctx, session_store) == []


ESCAPES = [
    # a symlink a RUN leaves in a cache, used as source= by the next: resolved inside the cache
    pytest.param(FROM + "RUN --mount=type=cache,id=esc,target=/c ln -sfn /etc /c/link\n"
                 "RUN --mount=type=cache,id=esc,target=/c,source=link ls /c 2>&1\n", {},
                 None, "does not exist in cache esc", id="cache-source-symlink-to-host-etc"),
    # .. in a cache source is cleaned against / first (BuildKit: path.Join("/", source))
    pytest.param(FROM + "RUN --mount=type=cache,id=up,target=/c mkdir -p /c/etc && echo in-cache > /c/etc/m\n"
                 "RUN --mount=type=cache,id=up,target=/c,source=../../../../etc cat /c/m\n", {},
                 "in-cache", None, id="cache-source-dotdot"),
    # a context symlink pointing out of the context
    pytest.param(FROM + "RUN --mount=type=bind,source=hostetc,target=/x ls /x\n", {"hostetc": Link("/etc")},
                 None, "outside the build context", id="context-symlink-out"),
    # a context source with ..
    pytest.param(FROM + "RUN --mount=type=bind,source=../../../etc,target=/x ls /x\n", {},
                 None, "outside the build context", id="context-dotdot"),
    # a from= image source with a symlink out of the image
    pytest.param("FROM pbtest/busybox:base AS evil\nRUN ln -s /etc /evil\nFROM pbtest/busybox:base\n"
                 "RUN --mount=type=bind,from=evil,source=/evil/hostname,target=/x cat /x\n", {},
                 None, "not found in the source image", id="image-source-symlink-out"),
]


@pytest.mark.parametrize("text, spec, shown, error", ESCAPES)
def test_a_mount_never_reaches_the_host(text, spec, shown, error, store_root, tmp_path):
    """The host has /etc/hostname and a long /etc; none of it may show up in a step."""
    built = build(store_root, make_context(tmp_path / "ctx", spec), "--no-cache", buildfile=text, check=False)
    out = built.proc.stdout + built.proc.stderr
    host_names = {"hostname", "os-release", "fstab"} & {p.name for p in Path("/etc").iterdir()}
    if error is not None:
        assert built.proc.returncode != 0 and error in out, out
    else:
        assert built.ok and shown in out, out
    assert not any(f"] {name}" in out for name in host_names), out
    assert mounts_under(store_root) == []


def test_bind_content_is_in_the_key_cache_content_is_not(store_root, tmp_path):
    """A changed context file under a bind reruns the step (as COPY); what a cache holds never
    does: the third build is a hit although the cache changed in between."""
    ctx = make_context(tmp_path / "ctx", {"req.txt": "a\n"})
    text = FROM + ("RUN --mount=type=bind,source=req.txt,target=/r --mount=type=cache,id=k,target=/c "
                   "cat /r /c/* 2>/dev/null; true\n")
    first = build(store_root, ctx, buildfile=text)
    assert outputs(first, 2) == ["a"]
    make_context(ctx, {"req.txt": "b\n"})
    second = build(store_root, ctx, buildfile=text)
    assert outputs(second, 2) == ["b"]
    build(store_root, ctx, "--no-cache", buildfile=FROM + "RUN --mount=type=cache,id=k,target=/c touch /c/new\n")
    third = build(store_root, ctx, buildfile=text)
    assert outputs(third, 2) == []


def test_context_bind_is_owned_by_root(session_store, tmp_path):
    """docker's client sends the context with every owner 0:0 (BuildKit shows it so): a RUN
    that copies from a bind with cp -a leaves root-owned files, whoever owns the checkout."""
    ctx = make_context(tmp_path / "ctx", {"d/f": File("f\n", 0o4755, (1000, 1000)),
                                          "d/g": File("g\n", 0o600, (7, 8))})
    built = build(session_store, ctx, "--no-cache", tag="rm/owners", buildfile=FROM +
                  "RUN --mount=type=bind,source=d,target=/d cp -a /d /copy && stat -c '%a %u:%g %n' /d/f /d/g\n")
    assert outputs(built, 2) == ["4755 0:0 /d/f", "600 0:0 /d/g"]
    assert [(line.split()[-1], line.split()[1], line.split()[2]) for line in built.last_layer()] == \
        [("copy", "0755", "0:0"), ("copy/f", "4755", "0:0"), ("copy/g", "0600", "0:0"), ("d", "0755", "0:0")]
    assert pybuild("run", "rm/owners", "cat", "/copy/f", root=session_store).stdout == "f\n"


@pytest.mark.parametrize("value, hint", [
    pytest.param("type=bind,from=buidler,target=/x", "did you mean from=builder?", id="bind-stage-typo"),
    pytest.param("type=cache,from=nosuch/image:1,target=/x", None, id="cache-unknown-image"),
    pytest.param("type=bind,from=later,target=/x", None, id="a-later-stage"),
])
def test_from_naming_nothing_fails_before_any_run(value, hint, session_store, tmp_path):
    """--mount from= naming neither an earlier stage nor a stored image is a Buildfile error
    at the flag before the first step runs (nothing is pulled: PYBUILD_PULL=never here)."""
    text = ("FROM pbtest/busybox:base AS builder\nRUN echo built > /b\n"
            f"FROM pbtest/busybox:base AS app\nRUN echo first-step-ran\nRUN --mount={value} true\n"
            "FROM pbtest/busybox:base AS later\n")
    built = build(session_store, make_context(tmp_path / "ctx"), "--no-cache", "--target", "app", buildfile=text,
                  check=False)
    assert built.proc.returncode == 2, built.proc.stdout + built.proc.stderr
    assert "Buildfile:5:" in built.proc.stderr and "from=" in built.proc.stderr, built.proc.stderr
    assert f"    RUN --mount={value} true\n" in built.proc.stderr
    if hint is not None:
        assert hint in built.proc.stderr
    assert "first-step-ran" not in built.proc.stdout and "Step 2/" not in built.proc.stdout
