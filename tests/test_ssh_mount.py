"""``RUN --mount=type=ssh`` with ``pybuild build --ssh``: a real ``ssh-agent`` (openssh-client)
on a socket in tmp holding a key made by ``ssh-keygen``, built by pybuild and by docker 20.10's
BuildKit (``docker build --ssh``) and compared as the other differentials are
(tests/buildkitdiff.py).  busybox has no ssh client, so the steps run the host's ``ssh-add``
from an image of it and its libraries (pbtest/sshtools, bound with ``from=``): ``ssh-add -l``
inside the step lists the key only if the forwarded socket really reaches the agent.
Nothing leaves the machine: the agent is a local socket, the builds have no network."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from buildfixtures import build, make_context, pybuild
from buildkitdiff import BASE, Case, build_both, start_docker
from dockerd import require_tool

TOOLS = "pbtest/sshtools:latest"
# run the host's ssh-add with its own loader and libraries, from the bound tools image
SSH_ADD = "/tools/ld.so --library-path /tools/lib /tools/ssh-add"
BIND_TOOLS = f"--mount=type=bind,from={TOOLS},target=/tools"


def tools_tar(out: Path) -> Path:
    """A rootfs tar of ssh-add, the libraries ldd names, and the loader as /ld.so."""
    ssh_add = require_tool("ssh-add")
    ldd = subprocess.run(["ldd", ssh_add], capture_output=True, text=True, check=True).stdout
    libs = [w for line in ldd.splitlines() for w in line.split() if w.startswith("/")]
    loader = next(lib for lib in libs if "ld-linux" in lib)
    with tarfile.open(out, "w") as tar:
        for name in (".", "lib"):             # explicit 0755 dirs: `pybuild import` of a tar
            info = tarfile.TarInfo(name)      # without "." makes the image root 0700 (docker: 0755)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(ssh_add, "ssh-add")
        tar.add(os.path.realpath(loader), "ld.so")
        for lib in libs:
            if lib != loader:
                tar.add(os.path.realpath(lib), f"lib/{os.path.basename(lib)}")
    return out


class Agent:
    """``ssh-agent -D`` on a socket in a short tmp dir, holding one new ed25519 key."""

    def __init__(self) -> None:
        require_tool("ssh-agent")
        self.dir = Path(tempfile.mkdtemp(prefix="agent.", dir="/tmp"))
        self.sock = self.dir / "agent.sock"
        self.key = self.dir / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pbtest@build", "-f", str(self.key)],
                       check=True)
        self.proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(self.sock)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            assert time.monotonic() < deadline and self.proc.poll() is None, "ssh-agent did not start"
            time.sleep(0.05)
        subprocess.run(["ssh-add", "-q", str(self.key)], env={**os.environ, "SSH_AUTH_SOCK": str(self.sock)},
                       check=True, capture_output=True)
        self.listing = subprocess.run(["ssh-add", "-l"], env={**os.environ, "SSH_AUTH_SOCK": str(self.sock)},
                                      check=True, capture_output=True, text=True).stdout.strip()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def agent():
    a = Agent()
    try:
        yield a
    finally:
        a.stop()


@pytest.fixture(scope="module")
def tools(tmp_path_factory) -> Path:
    return tools_tar(tmp_path_factory.mktemp("tools") / "tools.tar")


@pytest.fixture(scope="module")
def docker(session_store, tmp_path_factory, tools):
    tmp = tmp_path_factory.mktemp("sshbase")
    daemon = start_docker(session_store, tmp)
    try:
        pybuild("import", str(tools), TOOLS, root=session_store)
        pybuild("save", TOOLS, "-o", str(tmp / "tools-image.tar"), root=session_store)
        daemon.run("load", "-i", str(tmp / "tools-image.tar"))
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def store(store_root, tools):
    pybuild("import", str(tools), TOOLS, root=store_root)
    return store_root


FROM = f"FROM {BASE}\n"
SEE = "stat -c '%F %a %u:%g' {t}"

CASES = {
    # the default: id default, target /run/buildkit/ssh_agent.0, SSH_AUTH_SOCK set to it,
    # a socket 0600 root's; the mount point's parents stay in the layer, the socket stub goes
    "default": (FROM + f"RUN --mount=type=ssh {BIND_TOOLS} {SSH_ADD} -l; echo $SSH_AUTH_SOCK; "
                + SEE.format(t="$SSH_AUTH_SOCK") + "\nRUN find /run | sort\n", ("--ssh", "default")),
    # mode, uid, gid of the socket; required and given
    "mode-owner-required": (FROM + f"RUN --mount=type=ssh,mode=0666,uid=1000,gid=1000,required {BIND_TOOLS} "
                            + SEE.format(t="/run/buildkit/ssh_agent.0") + f"; {SSH_ADD} -l\n", ("--ssh", "default")),
    # an id of its own on a target of its own; USER 1000 reaches it through mode 0600 uid 1000
    "id-target-user": (FROM + "USER 1000\nRUN --mount=type=ssh,id=deploy,target=/home/user/agent.sock,uid=1000 "
                       f"{BIND_TOOLS} echo $SSH_AUTH_SOCK; {SSH_ADD} -l\n", ("--ssh", "deploy={sock}")),
    # two ssh mounts: the second is ssh_agent.1, SSH_AUTH_SOCK names the first
    "two": (FROM + f"RUN --mount=type=ssh --mount=type=ssh,id=deploy {BIND_TOOLS} ls /run/buildkit; "
            f"echo $SSH_AUTH_SOCK; SSH_AUTH_SOCK=/run/buildkit/ssh_agent.1 {SSH_ADD} -l\n",
            ("--ssh", "default", "--ssh", "deploy={sock}")),
    # not given and not required: no mount, no SSH_AUTH_SOCK
    "absent-optional": (FROM + "RUN --mount=type=ssh ls /run/buildkit 2>&1; echo \"[${SSH_AUTH_SOCK:-unset}]\"\n", ()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_as_buildkit(name, agent, docker, store, tmp_path):
    text, args = CASES[name]
    case = Case(text, args=tuple(a.format(sock=agent.sock) for a in args), env={"SSH_AUTH_SOCK": str(agent.sock)})
    ours, theirs = build_both(docker, store, tmp_path, name, case)
    assert ours.outputs == theirs.outputs, f"--- pybuild:\n{ours.output}\n--- BuildKit:\n{theirs.output}"
    if "ssh-add" in text:
        assert any(agent.listing in lines for lines in ours.outputs.values()), ours.output
    assert ours.steps() == theirs.steps()
    assert ours.config() == theirs.config()


def test_required_and_not_given_fails(docker, store, tmp_path):
    text = FROM + "RUN --mount=type=ssh,required true\n"
    ctx = make_context(tmp_path / "ctx")
    (tmp_path / "Dockerfile").write_text(text)
    bk = docker.buildkit("-f", str(tmp_path / "Dockerfile"), str(ctx), check=False)
    assert bk.returncode != 0 and 'no SSH key "" forwarded from the client' in bk.stdout
    ours = build(store, ctx, buildfile=text, check=False)
    assert ours.proc.returncode == 1
    assert "ssh agent default is required but was not given (pybuild build --ssh default" in ours.proc.stderr


def test_key_files_get_a_private_agent(agent, store, tmp_path):
    """``--ssh default=KEYFILE`` starts an ssh-agent for the build holding that key (the
    user's own agent is not used), stopped, by its pid, when the build ends."""
    ctx = make_context(tmp_path / "ctx")
    text = FROM + f"RUN --mount=type=ssh {BIND_TOOLS} {SSH_ADD} -l\n"
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    built = build(store, ctx, "--no-cache", "--ssh", f"default={agent.key}", buildfile=text, env=env)
    assert f"[2/2] {agent.listing}" in built.proc.stdout
    agents = subprocess.run(["pgrep", "-f", f"ssh-agent -D -a {store}"], capture_output=True, text=True).stdout
    assert agents == "", "the build's ssh-agent outlived it"


def test_the_agent_socket_is_never_in_a_layer(agent, store, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    built = build(store, ctx, "--ssh", "default", env={"SSH_AUTH_SOCK": str(agent.sock)}, tag="ssh/layer",
                  buildfile=FROM + "RUN --mount=type=ssh,target=/root/agent.sock touch /marker\n")
    assert [line.split()[-1] for line in built.last_layer()] == ["marker", "root"]


def test_ssh_errors(store, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    text = FROM + "RUN --mount=type=ssh true\n"
    no_agent = build(store, ctx, "--no-cache", "--ssh", "default", buildfile=text, env=env, check=False)
    assert no_agent.proc.returncode == 2
    assert "--ssh default: $SSH_AUTH_SOCK is not set" in no_agent.proc.stderr
    bad_key = tmp_path / "not-a-key"
    bad_key.write_text("nope\n")
    bad = build(store, ctx, "--no-cache", "--ssh", f"default={bad_key}", buildfile=text, env=env, check=False)
    assert bad.proc.returncode == 2
    assert f"--ssh default: {bad_key} is neither an agent socket nor a key ssh-add takes" in bad.proc.stderr
