"""Differential: Buildfiles built by pybuild and by docker's classic builder
(`DOCKER_BUILDKIT=0 docker build`, on a dockerd the test starts) from the same base must give
the same layers, rootfs, config and history.  This reaches beyond the fixed goldens."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from builder.export.docker_archive import load
from builder.store import Store
from conftest import REPO, pybuild, writable_copy
from dockerd import DockerDaemon
from imagecheck import config_view, history_lines, layer_lines, mask_source_hash, rootfs_lines

CASES = {
    # the example, with its own context and its own base (examples/webapp/make-base.sh)
    "webapp": (REPO / "examples" / "webapp", None),
    "exec-form-and-entrypoint": (None, 'FROM pbtest/busybox:base\nRUN ["/bin/sh", "-c", "echo x > /e"]\n'
                                       'ENTRYPOINT ["/bin/cat"]\nCMD ["/e"]\n'),
    "entrypoint-drops-inherited-cmd": (None, 'FROM pbtest/busybox:base\nCMD ["a"]\nENTRYPOINT ["sh"]\n'),
    "workdir-existing-and-relative": (None, "FROM pbtest/busybox:base\nWORKDIR /etc\nWORKDIR sub/dir\n"
                                            "RUN pwd > here\n"),
    "delete-hardlinked-and-symlinked": (None, "FROM pbtest/busybox:base\nRUN rm /opt/data/hardlink "
                                              "/opt/data/link-to-sub && touch /opt/data/sub/file\n"),
    "copy-over-symlinked-dir": ("ctx", "FROM pbtest/busybox:base\nCOPY f.txt /opt/data/link-to-sub/\n"
                                       "COPY d /opt/\nCOPY f.txt rel.txt\n"),
    "env-label-user-expose": (None, "FROM pbtest/busybox:base\nENV A=1 B=\"two words\"\nENV C=$A-${B}\n"
                                    "LABEL x=$C\nUSER user\nEXPOSE 80 53/udp\nRUN id -u > /tmp/uid\n"),
    "chmod-dirs-and-opaque": (None, "FROM pbtest/busybox:base\nRUN chmod 700 /usr/share && "
                                    "rm -rf /var/lib/app && mkdir /var/lib/app && mkfifo /var/lib/app/f\n"),
}


@pytest.fixture(scope="module")
def docker(session_store, tmp_path_factory):
    daemon = DockerDaemon().start()
    try:
        tmp = tmp_path_factory.mktemp("base")
        subprocess.run(["sh", str(REPO / "examples/webapp/make-base.sh"), str(tmp / "example.tar")], check=True)
        pybuild("import", str(tmp / "example.tar"), "example/busybox:latest", root=session_store)
        pybuild("save", "pbtest/busybox:base", "example/busybox:latest", "-o", str(tmp / "bases.tar"),
                root=session_store)
        daemon.run("load", "-i", str(tmp / "bases.tar"))
        yield daemon
    finally:
        daemon.stop()


def make_context(name: str, tmp_path: Path) -> Path:
    ctx_src, text = CASES[name]
    if isinstance(ctx_src, Path):
        ctx = writable_copy(ctx_src, tmp_path / "ctx")
        buildfile = (ctx / "Buildfile").read_text()
    else:
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        buildfile = text
        if ctx_src == "ctx":
            (ctx / "f.txt").write_text("file\n")
            (ctx / "d" / "inner").mkdir(parents=True)
            (ctx / "d" / "inner" / "g").write_text("g\n")
            os.chmod(ctx / "d" / "inner", 0o750)
    (ctx / "Buildfile").write_text(buildfile)
    (ctx / "Dockerfile").write_text(buildfile)
    (ctx / ".dockerignore").write_text("Buildfile\nDockerfile\n")
    return ctx


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_image_as_docker_classic(name, docker, session_store, tmp_path):
    ctx = make_context(name, tmp_path)
    tag = f"diff/{name}"
    # docker's classic builder; its RUN containers get no network, as ours
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    docker.run("build", "--network", "none", "-t", tag, str(ctx), env=env)
    saved = tmp_path / "docker.tar"
    docker.run("save", "-o", str(saved), tag)
    theirs = Store(tmp_path / "docker-store")
    [(_, their_id)] = load(theirs, saved)

    os.unlink(ctx / ".dockerignore")              # pybuild has no .dockerignore yet (issue #5)
    os.unlink(ctx / "Dockerfile")
    shutil.move(ctx / "Buildfile", tmp_path / "Buildfile")
    pybuild("-f", str(tmp_path / "Buildfile"), "-t", tag, str(ctx), root=session_store)
    ours = Store(session_store)
    our_id = ours.resolve(tag)

    assert layer_lines(ours, our_id, skip=1) == layer_lines(theirs, their_id, skip=1)
    assert rootfs_lines(ours, our_id) == rootfs_lines(theirs, their_id)
    assert config_view(ours, our_id) == config_view(theirs, their_id)
    assert [mask_source_hash(h) for h in history_lines(ours, our_id, skip=1)] == \
        [mask_source_hash(h) for h in history_lines(theirs, their_id, skip=1)]
