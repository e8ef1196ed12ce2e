"""``RUN --mount=type=cache`` in the store (store/cachemounts.py): never in a layer, kept
across builds, the three sharing modes between two pybuild processes on one store at once,
``pybuild df`` and ``pybuild prune --cache-mounts``.  What a cache holds and how ids and bases
name caches is compared with BuildKit in test_buildkit_differential.py (cache-* cases)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from buildfixtures import REPO, build, make_context, pybuild

from builder.store import cachemounts
from builder.store.store import Store

FROM = "FROM pbtest/busybox:base\n"


def test_nothing_under_a_cache_mount_is_in_a_layer(store_root, tmp_path):
    """A RUN writes a tree into two caches (one on a new path, one over a dir of the image)
    and a file beside them: its layer holds the file and the new mount point dir, nothing
    below either mount point; the image's own dir is untouched."""
    text = (FROM + "RUN --mount=type=cache,target=/root/.cache/pip --mount=type=cache,target=/var/lib/app "
            "mkdir -p /root/.cache/pip/wheels /var/lib/app/db && echo w > /root/.cache/pip/wheels/a.whl && "
            "ln -s /etc/passwd /root/.cache/pip/link && echo db > /var/lib/app/db/data && "
            "rm -f /var/lib/app/state; echo built > /built\n")
    built = build(store_root, make_context(tmp_path / "ctx"), buildfile=text, tag="cm/layer")
    layer = built.last_layer()
    paths = [line.split()[-1] for line in layer]
    assert paths == ["built", "root", "root/.cache", "root/.cache/pip"], layer
    assert "f 0644 0:0 6 " in "\n".join(built.rootfs()) and any(
        line.endswith(" var/lib/app/state") for line in built.rootfs()), "the image's file under the mount is kept"


def test_a_second_build_sees_what_the_first_left(store_root, tmp_path):
    """The second build runs the step again (--no-cache) and finds the first build's files.
    --no-cache does not clear cache mounts in pybuild; docker 20.10's BuildKit starts a plain
    one afresh under --no-cache (test_buildkit_differential.test_no_cache_and_cache_mounts)."""
    ctx = make_context(tmp_path / "ctx")
    text = FROM + ("RUN --mount=type=cache,target=/var/cache/apk echo run >> /var/cache/apk/log && "
                   "wc -l < /var/cache/apk/log\n")
    first = build(store_root, ctx, buildfile=text)
    second = build(store_root, ctx, "--no-cache", buildfile=text)
    assert "[2/2] 1" in first.proc.stdout and "[2/2] 2" in second.proc.stdout
    third = build(store_root, ctx, buildfile=text)         # a cache hit: the step does not run
    assert "[2/2]" not in third.proc.stdout


# == two builds at once ==========================================================================
def start_build(root: Path, ctx: Path, text: str, name: str, tmp: Path) -> subprocess.Popen[str]:
    """`pybuild build --no-cache --build-arg N=name` in the background (its own Buildfile)."""
    buildfile = tmp / f"Buildfile.{name}"
    buildfile.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYBUILD_PULL": "never"}
    return subprocess.Popen([sys.executable, "-m", "builder", "--root", str(root), "build", "--no-cache",
                             "--build-arg", f"N={name}", "-f", str(buildfile), str(ctx)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def cache_dir(root: Path, cache_id: str, timeout: float = 60) -> Path:
    """The main data dir of cache ``cache_id`` in store ``root`` (waits for a build to make it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for top in (root / "cache-mounts").glob("*") if (root / "cache-mounts").is_dir() else ():
            if (top / "id").is_file() and (top / "id").read_text() == cache_id and (top / "main/data").is_dir():
                return top / "main/data"
        time.sleep(0.1)
    raise AssertionError(f"cache {cache_id} was never made in {root}")


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


# each step says it started (in a shared rendezvous cache), waits for the other's start, then
# looks for the other's marker in the cache under test
RENDEZVOUS = (FROM + "ARG N\n"
              "RUN --mount=type=cache,id=rendezvous,target=/sync --mount=type=cache,id=c,target=/c,sharing={sharing} "
              "echo $N > /c/marker-$N && touch /sync/started-$N && "
              "i=0; while [ $(ls /sync | wc -l) -lt 2 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
              "sleep 1; echo \"$N sees: $(ls /c | tr '\\n' ' ')\"\n")


def test_shared_both_see_each_others_writes_at_once(store_root, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    text = RENDEZVOUS.format(sharing="shared")
    a = start_build(store_root, ctx, text, "a", tmp_path)
    b = start_build(store_root, ctx, text, "b", tmp_path)
    out_a, out_b = finish(a), finish(b)
    assert "a sees: marker-a marker-b" in out_a, out_a
    assert "b sees: marker-a marker-b" in out_b, out_b


def test_private_gives_the_second_build_another_directory(store_root, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    text = RENDEZVOUS.format(sharing="private")
    a = start_build(store_root, ctx, text, "a", tmp_path)
    b = start_build(store_root, ctx, text, "b", tmp_path)
    out_a, out_b = finish(a), finish(b)
    assert "a sees: marker-a" in out_a and "b sees: marker-b" in out_b
    assert "marker-b" not in out_a.split("a sees:")[1].splitlines()[0], out_a
    assert "marker-a" not in out_b.split("b sees:")[1].splitlines()[0], out_b
    [info] = [c for c in cachemounts.listing(Store(store_root)) if c.id == "c"]
    assert info.instances == 2 and not info.in_use


def test_locked_makes_the_second_build_wait(store_root, tmp_path):
    """A holds the locked cache for 3 s; B is started while A is inside its step and may
    only begin when A is done: the log they both append to is never interleaved."""
    ctx = make_context(tmp_path / "ctx")
    text = (FROM + "ARG N\nRUN --mount=type=cache,id=c,target=/c,sharing=locked "
            "echo \"start $N\" >> /c/log && touch /c/in-$N && sleep 3 && echo \"end $N\" >> /c/log\n")
    a = start_build(store_root, ctx, text, "a", tmp_path)
    data = cache_dir(store_root, "c")
    wait_for(data / "in-a")
    b = start_build(store_root, ctx, text, "b", tmp_path)
    time.sleep(1.5)                                    # B is waiting for the lock by now
    assert not (data / "in-b").exists(), "B's step ran while A held the locked cache"
    finish(a), finish(b)
    assert (data / "log").read_text() == "start a\nend a\nstart b\nend b\n"


def test_private_when_idle_reuses_the_directory(store_root, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    text = FROM + "ARG N\nRUN --mount=type=cache,id=p,target=/c,sharing=private echo $N >> /c/log && cat /c/log\n"
    for name in ("one", "two"):
        built = build(store_root, ctx, "--build-arg", f"N={name}", buildfile=text)
    assert "[3/3] one" in built.proc.stdout and "[3/3] two" in built.proc.stdout
    [info] = [c for c in cachemounts.listing(Store(store_root)) if c.id == "p"]
    assert info.instances == 1


# == df and prune ================================================================================
def test_df_lists_cache_mounts_and_prune_frees_them(store_root, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    build(store_root, ctx, buildfile=FROM + "RUN --mount=type=cache,id=big,target=/c "
          "dd if=/dev/zero of=/c/blob bs=1024 count=3072 2>/dev/null\n"
          "RUN --mount=type=cache,id=big,target=/c,uid=1000 echo x > /c/small\n")
    df = pybuild("df", root=store_root).stdout
    # two caches of id big: the plain one and the uid=1000 one (BuildKit keys them apart too)
    assert "Cache mounts (RUN --mount=type=cache): 2, 3.15MB" in df, df
    rows = [line.split() for line in df.splitlines() if line.startswith("big ")]
    assert sorted(rows) == [["big", "2B", "1", "no"], ["big", "3.15MB", "1", "no"]], df
    pruned = pybuild("prune", "--cache-mounts", root=store_root).stdout
    assert "Deleted 2 cache mounts" in pruned, pruned
    assert "Total reclaimed space: 3.15MB" in pruned, pruned
    assert "Cache mounts" not in pybuild("df", root=store_root).stdout
    assert not any((store_root / "cache-mounts").iterdir())
    # the next build starts with an empty cache again
    again = build(store_root, ctx, "--no-cache", buildfile=FROM + "RUN --mount=type=cache,id=big,target=/c ls -a /c\n")
    assert [line for line in again.proc.stdout.splitlines() if line.startswith("[2/2]")] == ["[2/2] .", "[2/2] .."]


def test_prune_keeps_a_cache_in_use(store_root, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    text = FROM + "ARG N\nRUN --mount=type=cache,id=busy,target=/c touch /c/in && sleep 3\n"
    a = start_build(store_root, ctx, text, "a", tmp_path)
    wait_for(cache_dir(store_root, "busy") / "in")
    listed = [c for c in cachemounts.listing(Store(store_root)) if c.id == "busy"]
    assert listed and listed[0].in_use
    assert cachemounts.prune(Store(store_root)) == (0, 0)
    finish(a)
    assert cachemounts.prune(Store(store_root))[0] == 1


@pytest.mark.parametrize("flag", ["--no-cache", ""])
def test_prune_without_flag_keeps_cache_mounts(flag, store_root, tmp_path):
    """`pybuild prune` (and --all) leave cache mounts alone; only --cache-mounts removes them."""
    ctx = make_context(tmp_path / "ctx")
    build(store_root, ctx, *([flag] if flag else []),
          buildfile=FROM + "RUN --mount=type=cache,id=k,target=/c touch /c/f\n")
    pybuild("prune", "--all", root=store_root)
    assert "Cache mounts (RUN --mount=type=cache): 1" in pybuild("df", root=store_root).stdout
