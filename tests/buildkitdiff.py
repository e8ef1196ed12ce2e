"""BuildKit differentials (issue 11): one Dockerfile built by docker 20.10's BuildKit
(``DOCKER_BUILDKIT=1 docker build --network none``, on a private offline dockerd) and by
pybuild, and the views the tests compare:

- ``steps``: the rootfs after every history entry (every layer, and every step that made
  none), in the conformance format — docker's image is saved, loaded into a store of its own
  and its layers applied; pybuild's read from its store;
- ``config``: imagecheck.config_view plus Volumes/Shell/Healthcheck/StopSignal;
- ``outputs``: what each RUN printed while building, by instruction number;
- ``run``: what ``docker run --rm --network none IMAGE`` prints, for both images (pybuild's
  is saved and ``docker load``ed).

What differs on purpose between the two builders, normalised here and nowhere else:

- runc gives BuildKit's first RUN layer empty ``dev/``, ``proc/`` and ``sys/`` dirs; pybuild
  keeps the classic builder's init layer, so they never reach its layers.  They are dropped
  from both rootfs listings.  (BuildKit also copies ``etc/`` up in every RUN layer, for its
  resolv.conf/hosts stubs it removes again; a rootfs listing does not show a copy-up.)
- BuildKit writes its default ``PATH`` into ``Env`` when the base image has none (the classic
  builder, and so pybuild, does not): dropped from BuildKit's Env when the base had none.
- ``created_by`` is classic in pybuild (``/bin/sh -c …``) and ``RUN /bin/sh -c … # buildkit``
  in BuildKit: history strings are never compared.
- docker 20.10's BuildKit prints secret values in the build output; pybuild prints ``****``.
  Callers pass the secret values to ``mask`` BuildKit's output the same way.

docker 20.10's built-in Dockerfile frontend (dockerfile 1.2) has no heredocs, no
``RUN --network``/``--security``, no tmpfs ``size`` and no secret ``env``, and a ``# syntax=``
line would pull a newer frontend (nothing may leave the machine).  A case using them gives
docker the same build spelled the 1.2 way (``Case.docker_text``): the flags that change nothing
on disk left out (``--network=none``: the whole BuildKit build runs with ``--network none``),
heredocs as printf/sh -c, an ``env`` secret read from its file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from buildfixtures import Entry, build, make_context, pybuild
from dockerd import DockerDaemon
from imagecheck import chain_rootfs_lines, config_view

from builder.export.docker_archive import load
from builder.oci.config import parse_config
from builder.oci.digest import chain_ids
from builder.store.store import Store

BASE = "pbtest/busybox:base"

#: runc's mount points in BuildKit's first RUN layer (see the module docstring).
RUNC_DIRS = frozenset({"d 0755 0:0 dev", "d 0755 0:0 proc", "d 0755 0:0 sys"})

#: BuildKit's default PATH, written into Env when the base has none.
BUILDKIT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

EXTRA_KEYS = ("Volumes", "Shell", "Healthcheck", "StopSignal")


def start_docker(session_store: Path, tmp: Path) -> DockerDaemon:
    """An offline private dockerd holding BASE, loaded from pybuild's own save of it (so both
    builders start from the same image ID)."""
    daemon = DockerDaemon(offline=True).start()
    try:
        pybuild("save", BASE, "-o", str(tmp / "base.tar"), root=session_store)
        daemon.run("load", "-i", str(tmp / "base.tar"))
    except BaseException:
        daemon.stop()
        raise
    return daemon


@dataclass(frozen=True)
class Case:
    """One differential: the Buildfile (pybuild's), the context, and each builder's extra
    build arguments.  ``docker_text``: the same build in the dockerfile 1.2 spelling, when the
    text uses what docker 20.10's frontend lacks (None: the same text)."""

    text: str
    context: Mapping[str, Entry] = field(default_factory=dict)
    args: tuple[str, ...] = ()                 # given to both builders (e.g. --secret, --target)
    docker_text: str | None = None
    docker_args: tuple[str, ...] = ()          # given to docker only
    pybuild_args: tuple[str, ...] = ()         # given to pybuild only
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)   # id → value, given to both as files


@dataclass
class Result:
    """One builder's image, read back into a store."""

    store: Store
    image_id: str
    output: str                                # the build's whole output
    outputs: dict[int, list[str]]              # instruction number → what its RUN printed
    run: str                                   # docker run --rm --network none IMAGE

    def steps(self) -> list[list[str]]:
        return step_rootfs(self.store, self.image_id)

    def config(self) -> dict:
        return config_of(self.store, self.image_id)


def build_both(docker: DockerDaemon, root: Path, tmp: Path, name: str, case: Case) -> tuple[Result, Result]:
    """Build ``case`` with pybuild (store ``root``, fresh for the case) and with BuildKit
    (its build cache, cache mounts included, pruned first); (ours, theirs)."""
    ctx = make_context(tmp / "ctx", case.context)
    env = dict(case.env)
    secret_args: list[str] = []
    for ident, value in case.secrets.items():
        (tmp / f"secret-{ident}").write_text(value)
        secret_args += ["--secret", f"id={ident},src={tmp / f'secret-{ident}'}"]
    ours_tag, theirs_tag = f"pb/{name}", f"bk/{name}"

    docker.run("builder", "prune", "-af")          # its caches and cache mounts: none before
    docker_file = tmp / "Dockerfile"
    docker_text = case.docker_text if case.docker_text is not None else case.text
    docker_file.write_text(docker_text)
    bk = docker.buildkit(*secret_args, *case.args, *case.docker_args,
                         "-f", str(docker_file), "-t", theirs_tag, str(ctx), env=env)
    assert "resolve docker.io" not in bk.stdout, f"BuildKit tried to pull:\n{bk.stdout}"
    docker.run("save", "-o", str(tmp / "bk.tar"), theirs_tag)
    theirs_store = Store(tmp / "bk-store")
    [(_, theirs_id)] = load(theirs_store, tmp / "bk.tar")
    bk_output = bk.stdout
    for secret in case.secrets.values():
        bk_output = bk_output.replace(secret.strip(), "****")
    theirs = Result(theirs_store, theirs_id, bk_output, buildkit_outputs(bk_output, docker_text),
                    run_output(docker, theirs_tag))

    built = build(root, ctx, *secret_args, *case.args, *case.pybuild_args, buildfile=case.text, tag=ours_tag,
                  env=env)
    pybuild("save", ours_tag, "-o", str(tmp / "pb.tar"), root=root)
    docker.run("load", "-i", str(tmp / "pb.tar"))
    output = built.proc.stdout + built.proc.stderr
    ours = Result(built.store, built.image_id or "", output, pybuild_outputs(built.proc.stdout),
                  run_output(docker, ours_tag))
    return ours, theirs


def run_output(docker: DockerDaemon, image: str, *cmd: str) -> str:
    """What ``docker run --rm --network none IMAGE [CMD]`` prints (stdout, then stderr) and
    its exit code.  An image without CMD gives ``""``."""
    cfg = json.loads(docker.run("image", "inspect", image).stdout)[0]["Config"]
    if not cmd and not cfg.get("Cmd") and not cfg.get("Entrypoint"):
        return ""
    proc = docker.run("run", "--rm", "--network", "none", image, *cmd, check=False)
    return f"{proc.stdout}{proc.stderr}exit {proc.returncode}\n"


# == the views ====================================================================================
def step_rootfs(store: Store, image_id: str, skip: int = 1) -> list[list[str]]:
    """The rootfs after each history entry past the first ``skip`` (the base), runc's mount
    point dirs left out (module docstring)."""
    cfg = parse_config(store.image_config(image_id))
    chains = chain_ids(cfg.diff_ids)
    seen: dict[int, list[str]] = {}
    out = []
    layers = 0
    for n, entry in enumerate(cfg.history):
        layers += 0 if entry.empty_layer else 1
        if n < skip:
            continue
        if layers not in seen:
            seen[layers] = [line for line in chain_rootfs_lines(store, chains[:layers]) if line not in RUNC_DIRS]
        out.append(seen[layers])
    return out


def config_of(store: Store, image_id: str) -> dict:
    """config_view and the keys of EXTRA_KEYS; BuildKit's default PATH dropped when it is
    the whole Env and the base had none (module docstring)."""
    view = config_view(store, image_id)
    cfg = (json.loads(store.image_config(image_id)).get("config") or {})
    view.update({k: cfg.get(k) for k in EXTRA_KEYS})
    env = view["Env"] or []
    if env and env[0] == BUILDKIT_PATH:
        env = env[1:]
    view["Env"] = env or None
    return view


_PB_OUTPUT = re.compile(r"^\[(\d+)/\d+\] (.*)$")
_BK_HEADER = re.compile(r"^#(\d+) \[(?:(\S+) )?(\d+)/(\d+)\] ")
_BK_OUTPUT = re.compile(r"^#(\d+) \d+\.\d+ (.*)$")


def pybuild_outputs(stdout: str) -> dict[int, list[str]]:
    """Instruction number → the lines its RUN printed (pybuild prefixes them ``[N/M] ``)."""
    out: dict[int, list[str]] = {}
    for line in stdout.splitlines():
        m = _PB_OUTPUT.match(line)
        if m:
            out.setdefault(int(m.group(1)), []).append(m.group(2))
    return out


def buildkit_outputs(output: str, text: str) -> dict[int, list[str]]:
    """Instruction number (pybuild's numbering: every instruction of ``text``, global ARGs
    included) → the lines its RUN printed, from BuildKit's plain progress
    (``#V [stage i/n] …`` names vertex V, ``#V 0.123 line`` is its output)."""
    stages = _stage_vertices(text)
    vertex: dict[str, int] = {}
    out: dict[int, list[str]] = {}
    for line in output.splitlines():
        m = _BK_HEADER.match(line)
        if m:
            numbers = stages[(m.group(2) or "stage-0").lower()]
            vertex[m.group(1)] = numbers[int(m.group(3)) - 1]
            continue
        m = _BK_OUTPUT.match(line)
        if m and m.group(1) in vertex:
            out.setdefault(vertex[m.group(1)], []).append(m.group(2))
    return out


#: The instructions BuildKit makes a vertex of, and so counts in ``[stage i/n]``.
_VERTICES = ("from", "run", "copy", "add", "workdir")


def _stage_vertices(text: str) -> dict[str, list[int]]:
    """Stage name (``stage-K`` and its AS name, lower case) → the instruction numbers of its
    vertices (FROM first, unless it names an earlier stage).  Enough of a parser for the 1.2 spellings: continuations,
    comments and blank lines; no heredocs."""
    stages: dict[str, list[int]] = {}
    current: list[int] | None = None
    number = 0
    for line in re.sub(r"\\\n", "", text).splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        number += 1
        keyword = words[0].lower()
        if keyword == "from":
            image = next((w for w in words[1:] if not w.startswith("--")), "").lower()
            current = [] if image in stages else [number]     # FROM a stage is no vertex
            stages[f"stage-{sum(1 for k in stages if k.startswith('stage-'))}"] = current
            if len(words) >= 4 and words[-2].lower() == "as":
                stages[words[-1].lower()] = current
        elif keyword in _VERTICES and current is not None:
            current.append(number)
    return stages
