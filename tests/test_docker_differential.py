"""Differential: Buildfiles built by pybuild and by docker's classic builder
(`DOCKER_BUILDKIT=0 docker build`, on a dockerd the test starts) from the same base must give
the same layers, rootfs, config and history.  This reaches beyond the fixed goldens."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from buildfixtures import Dir, build, make_context, writable_copy
from conftest import REPO, pybuild
from dockerd import DockerDaemon
from imagecheck import config_view, history_lines, layer_lines, mask_source_hash, rootfs_lines

from builder.export.docker_archive import load
from builder.store.store import Store

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
    # -- issue 5 semantics; a third item is extra `build` arguments given to both builders ----
    # ARG history (the default, expanded), |N K=V sorted in RUN, --build-arg over the default
    "arg-run-created-by": (None, "FROM pbtest/busybox:base\nARG z=26 a\nARG m=$z-x\n"
                                 "RUN echo $a $m $z > /args\nENV E=$m\n", ("--build-arg", "a=A")),
    # classic builder: ENV wins over an ARG of the same name (and hides it from created_by)
    "arg-env-wins": (None, "FROM pbtest/busybox:base\nARG A=1\nENV A=2\nRUN echo $A > /a\n",
                     ("--build-arg", "A=3")),
    # an undeclared proxy arg reaches RUN; classic writes "|0 /bin/sh -c …"
    "arg-proxy-undeclared": (None, "FROM pbtest/busybox:base\nRUN echo $HTTP_PROXY > /p\n",
                             ("--build-arg", "HTTP_PROXY=http://proxy:3128")),
    # global ARGs are seen by FROM only, until re-declared in the stage
    "arg-global-in-from": (None, "ARG IMG=pbtest/busybox\nARG TAG=nope\nFROM $IMG:$TAG\n"
                                 "RUN echo \"[$TAG]\" > /before\nARG TAG\nRUN echo $TAG > /after\n",
                           ("--build-arg", "TAG=base")),
    "volume-stopsignal-healthcheck": (None, "FROM pbtest/busybox:base\nENV D=/data\nVOLUME $D /logs\n"
                                            "VOLUME [\"/x y\"]\nSTOPSIGNAL SIGQUIT\n"
                                            "HEALTHCHECK NONE\nHEALTHCHECK --retries=3 CMD [\"true\"]\n"
                                            "HEALTHCHECK --interval=1m30s --timeout=3s --start-period=500ms "
                                            "CMD wget -q localhost || exit 1\n"),
    "shell-run-cmd-nop": (None, "FROM pbtest/busybox:base\nSHELL [\"/bin/sh\", \"-ec\"]\n"
                                "RUN echo $- > /flags\nENV A=1\nWORKDIR /w\nCMD echo hi\n"
                                "ENTRYPOINT exec cat\n"),
    "maintainer-author": (None, "FROM pbtest/busybox:base\nENV A=1\nMAINTAINER Jo Doe <jo@example.com>\n"
                                "RUN echo > /m\nLABEL l=1\n"),
    "onbuild-recorded": (None, "FROM pbtest/busybox:base\nONBUILD RUN echo t > /t\nonbuild  env A=1\n"),
    # a stage's triggers run right after a FROM of that stage, and leave the image
    "onbuild-triggered-by-stage": (None, "FROM pbtest/busybox:base AS parent\nONBUILD RUN echo t > /t\n"
                                         "ONBUILD ENV T=1\nFROM parent\nRUN cat /t > /t2\n"),
    # the classic builder builds every stage up to the target; the result must be the same
    "multi-stage-from-stage": (None, "FROM pbtest/busybox:base AS a\nRUN echo a > /a\n"
                                     "FROM pbtest/busybox:base AS b\nRUN echo b > /b\n"
                                     "FROM A\nRUN cat /a > /a2\n"),
    "multi-stage-target": (None, "FROM pbtest/busybox:base AS a\nRUN echo a > /a\n"
                                 "FROM a AS b\nRUN echo b > /b\nFROM b\nRUN exit 1\n", ("--target", "b")),
    # not here: heredoc RUNs (the classic builder has no heredocs), and --target skipping a
    # failing stage (the classic builder builds every stage before the target).
}

# config keys beyond imagecheck.config_view that issue 5's instructions set
EXTRA_KEYS = ("Volumes", "Shell", "Healthcheck", "StopSignal", "OnBuild")


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


#: The context of the cases marked "ctx".
CTX_SPEC = {"f.txt": "file\n", "d/inner": Dir(0o750), "d/inner/g": "g\n"}


def case_context(name: str, tmp_path: Path) -> tuple[Path, str]:
    """The case's context as docker gets it (the Buildfile inside, also as Dockerfile, both
    ignored by .dockerignore), and the Buildfile's text."""
    ctx_src, text = CASES[name][:2]
    if isinstance(ctx_src, Path):
        ctx = writable_copy(ctx_src, tmp_path / "ctx")
        text = (ctx / "Buildfile").read_text()
    else:
        ctx = make_context(tmp_path / "ctx", CTX_SPEC if ctx_src == "ctx" else {})
    make_context(ctx, {"Buildfile": text, "Dockerfile": text, ".dockerignore": "Buildfile\nDockerfile\n"})
    return ctx, text


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_image_as_docker_classic(name, docker, session_store, tmp_path):
    ctx, text = case_context(name, tmp_path)
    tag = f"diff/{name}"
    # docker's classic builder; its RUN containers get no network, as ours
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    extra = CASES[name][2] if len(CASES[name]) > 2 else ()
    docker.run("build", "--network", "none", *extra, "-t", tag, str(ctx), env=env)
    saved = tmp_path / "docker.tar"
    docker.run("save", "-o", str(saved), tag)
    theirs = Store(tmp_path / "docker-store")
    [(_, their_id)] = load(theirs, saved)

    for only_docker in (".dockerignore", "Dockerfile", "Buildfile"):   # ours goes beside ctx
        os.unlink(ctx / only_docker)
    ours = Store(session_store)
    our_id = build(session_store, ctx, *extra, buildfile=text, tag=tag).image_id

    assert layer_lines(ours, our_id, skip=1) == layer_lines(theirs, their_id, skip=1)
    assert rootfs_lines(ours, our_id) == rootfs_lines(theirs, their_id)
    assert config_view(ours, our_id) == config_view(theirs, their_id)
    assert [mask_source_hash(h) for h in history_lines(ours, our_id, skip=1)] == \
        [mask_source_hash(h) for h in history_lines(theirs, their_id, skip=1)]
    assert extra_view(ours, our_id) == extra_view(theirs, their_id)


def extra_view(store: Store, image_id: str) -> dict:
    """The config keys of issue 5 (absent = null), the image's author and each entry's author."""
    cfg = json.loads(store.image_config(image_id))
    view = {k: (cfg.get("config") or {}).get(k) for k in EXTRA_KEYS}
    view["author"] = cfg.get("author", "")
    view["history authors"] = [h.get("author", "") for h in cfg.get("history", [])[1:]]
    return view
