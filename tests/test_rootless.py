"""Builds as an ordinary user (rootless): the user of tests/rootlessfixtures.py, with 65536
subordinate ids, builds every conformance case over overlay and with the copy snapshotter and
gets the diffIDs root gets; its store is its own; what needs real root fails saying so; a RUN
cannot chown outside the mapping nor reach the user's files.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from buildfixtures import writable_copy
from conftest import conformance_dir
from layerfixtures import needs_root
from variantfixtures import build_as_user

from builder.layer import userns

CASES = sorted(p.name for p in conformance_dir().iterdir() if (p / "Buildfile").is_file())
BASE = "FROM pbtest/busybox:base\n"
#: A container id outside any mapping the fixture gives (0 and 1–65536).
OUTSIDE = 3_000_000_000

pytestmark = needs_root


def user_case(user, case: str, name: str) -> tuple[Path, Path]:
    """The case's context and Buildfile, copied into the user's home (its to read)."""
    src = conformance_dir() / case
    ctx = writable_copy(src / "ctx" if (src / "ctx").is_dir() else src, user.home / "ctx" / name)
    buildfile = ctx.parent / f"{name}.Buildfile"
    buildfile.write_bytes((src / "Buildfile").read_bytes())
    user.own(user.home / "ctx")
    return ctx, buildfile


def user_build(user, text: str, name: str, *args: str, env: dict[str, str] | None = None):
    """``text`` built by the user in its default store from an empty context of its own."""
    ctx = user.home / "ctx" / name
    ctx.mkdir(parents=True)
    (ctx / "f").write_text("hello\n")
    (ctx.parent / f"{name}.Buildfile").write_text(text)
    user.own(user.home / "ctx")
    return user.pybuild("build", "-f", str(ctx.parent / f"{name}.Buildfile"), *args, str(ctx), env=env, check=False)


@pytest.mark.parametrize("snapshotter", ["overlay", "copy"])
@pytest.mark.parametrize("case", CASES)
def test_conformance_case_rootless_makes_roots_layers(case, snapshotter, rootless_user, overlay_reference):
    want = overlay_reference.conformance(case)
    ctx, buildfile = user_case(rootless_user, case, f"{case}-{snapshotter}")
    got = build_as_user(rootless_user, ctx, buildfile, f"rootless/{case}-{snapshotter}", snapshotter)
    assert got == want


def test_the_store_is_the_users_own(rootless_user):
    """Without --root: $XDG_DATA_HOME/pybuild, else ~/.local/share/pybuild; owned by the user,
    and the layers' files by the ids the namespace maps (container 1000 → subordinate 1000)."""
    store = rootless_user.home / ".local" / "share" / "pybuild"
    assert (store / "tags.json").is_file(), "the base was imported into the default store"
    assert all(p.stat().st_uid == rootless_user.uid for p in (store, store / "tags.json", store / "layers"))
    home_user = next(store.glob("layers/*/diff/home/user"))
    assert home_user.stat().st_uid == _subordinate_base(rootless_user) + 999
    xdg = rootless_user.home / "xdg"
    rootless_user.pybuild("images", env={"XDG_DATA_HOME": str(xdg)})
    assert (xdg / "pybuild" / "blobs" / "sha256").is_dir()


def _subordinate_base(user) -> int:
    for line in Path("/etc/subuid").read_text().splitlines():
        name, start, _ = line.split(":")
        if name in (user.name, str(user.uid)):
            return int(start)
    raise AssertionError("the user has no subordinate uids")


def test_the_mapping_is_subordinate_ids(rootless_user):
    code = "from builder.layer import userns; userns.enter(); print(userns.user_mapping())"
    out = rootless_user.run(*rootless_user.python, "-c", code, check=True).stdout.strip()
    base = _subordinate_base(rootless_user)
    assert out == (f"rootless: uids 0→{rootless_user.uid}, 1–65536→{base}–{base + 65535}; gids "
                   f"0→{rootless_user.gid}, 1–65536→{_subordinate_base_gid(rootless_user)}–"
                   f"{_subordinate_base_gid(rootless_user) + 65535} (subordinate ids, through newuidmap/newgidmap)")


def _subordinate_base_gid(user) -> int:
    for line in Path("/etc/subgid").read_text().splitlines():
        name, start, _ = line.split(":")
        if name in (user.name, str(user.uid)):
            return int(start)
    raise AssertionError("the user has no subordinate gids")


# -- what needs real root ----------------------------------------------------------------------
def test_a_run_cannot_chown_outside_the_mapping(rootless_user):
    proc = user_build(rootless_user, BASE + f"RUN touch /x && chown {OUTSIDE} /x\n", "chown-run")
    assert proc.returncode == 1
    assert "chown: /x: Invalid argument" in proc.stderr + proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("pybuild: error: ") and "step 2/2: RUN touch /x" in last and "exit code 1" in last
    assert "pybuild runs in a user namespace" in last and "container ids 0–65536" in last
    assert "Traceback" not in proc.stderr


def test_copy_chown_outside_the_mapping_says_so(rootless_user):
    proc = user_build(rootless_user, BASE + f"COPY --chown={OUTSIDE}:{OUTSIDE} f /f\n", "chown-copy")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith(
        f"chown-copy.Buildfile:2: step 2/2: COPY --chown={OUTSIDE}:{OUTSIDE} f /f: copy f to /f: Invalid "
        f"argument (pybuild runs in a user namespace: owner {OUTSIDE}:{OUTSIDE} is outside the ids mapped for "
        f"this user, container ids 0–65536; this needs real root)")


def test_a_device_node_needs_real_root(rootless_user):
    """mknod in a RUN fails (its own message, pybuild's hint); a layer holding a device node
    cannot be unpacked, and the error says why."""
    proc = user_build(rootless_user, BASE + "RUN mknod /null c 1 3\n", "mknod")
    assert proc.returncode == 1
    assert "Operation not permitted" in proc.stdout + proc.stderr
    assert "making device nodes" in proc.stderr.strip().splitlines()[-1]
    rootfs = rootless_user.home / "devices.tar"
    with tarfile.open(rootfs, "w") as tar:
        node = tarfile.TarInfo("dev/null")
        node.type, node.devmajor, node.devminor, node.mode = tarfile.CHRTYPE, 1, 3, 0o666
        tar.addfile(node)
    rootless_user.own(rootfs)
    proc = rootless_user.pybuild("import", str(rootfs), "devices", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("unpack dev/null: Operation not permitted (pybuild runs in a user "
                                        "namespace: making a device node needs real root)")


def test_a_run_cannot_reach_the_users_files(rootless_user):
    """The RUN is root in its namespace, and that root is the user on the host: nothing of the
    host outside its root and mounts is in reach, so the user's files are safe from it."""
    sentinel = rootless_user.home / "sentinel-7f3a"
    sentinel.write_text("untouched\n")
    rootless_user.own(sentinel)
    script = (f"RUN echo pwned > {sentinel} ; echo pwned > /proc/1/root{sentinel} ; "
              f"find / -xdev -name sentinel-7f3a -exec echo FOUND {{}} \\; 2>/dev/null ; "
              f"for p in {sentinel} /proc/*/root{sentinel} /proc/*/cwd{sentinel}; do "
              f"[ -e $p ] && echo FOUND $p ; done ; true\n")
    proc = user_build(rootless_user, BASE + script, "reach")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sentinel.read_text() == "untouched\n"
    assert "FOUND" not in proc.stdout.replace("echo FOUND", ""), proc.stdout


def test_one_id_only_without_subordinate_ids(rootless_user):
    """Without newuidmap (or subordinate ids) the namespace maps the user alone: the build says
    what that cannot do, an all-root image builds, an image owned by another id cannot even be
    unpacked, and a chown to another id fails with the reason."""
    env = {"PATH": "/nonexistent"}            # no newuidmap on the way: a single-id mapping
    root = rootless_user.home / "single"
    rootfs = rootless_user.home / "root-only.tar"
    with tarfile.open(rootfs, "w") as tar:
        for rel, kind in (("bin", tarfile.DIRTYPE), ("bin/busybox", tarfile.REGTYPE), ("etc", tarfile.DIRTYPE)):
            info = tarfile.TarInfo(rel)
            info.type, info.mode = kind, 0o755
            if kind == tarfile.REGTYPE:
                data = Path("/bin/busybox").read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    rootless_user.own(rootfs)
    rootless_user.pybuild("import", str(rootfs), "one/base", root=root, env=env)
    proc = user_build(rootless_user, "FROM one/base\nRUN [\"/bin/busybox\", \"mkdir\", \"/made\"]\n", "single-ok",
                      "--root", str(root), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("[WARNING]: rootless with one id only, as newuidmap/newgidmap are not installed (apt-get install "
            "uidmap): files can be owned by root alone") in proc.stderr
    proc = user_build(rootless_user, "FROM one/base\nRUN [\"/bin/busybox\", \"chown\", \"1000\", \"/bin\"]\n",
                      "single-chown", "--root", str(root), env=env)
    assert proc.returncode == 1
    assert "container id 0 only" in proc.stderr.strip().splitlines()[-1], proc.stdout + proc.stderr
    proc = rootless_user.pybuild("import", str(rootless_user.home / "base.tar"), "conf/base", root=root, env=env,
                                 check=False)
    assert proc.returncode == 1
    assert "owner 1000:1000 is outside the ids mapped for this user, container id 0 only" in proc.stderr


def test_denied_hint_outside_a_namespace_is_empty():
    """As root (no user namespace) a refused chown or mknod is reported as it is."""
    assert not userns.in_user_namespace()
    assert userns.denied_hint(OSError(22, "Invalid argument"), owner=(5, 5)) == ""
    assert userns.denied_hint(OSError(1, "Operation not permitted"), device=True) == ""
    assert userns.run_failure_hint(b"chown: /x: Invalid argument") == ""
