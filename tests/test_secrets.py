"""``RUN --mount=type=secret`` and ``pybuild build --secret``: a secret reaches the step and
nothing else.  Two long random values (one from a file, one from an environment variable)
are used by several steps; then every place a value could leak to is searched, bytes and
all: each saved image (the archive, and every layer in it unpacked), every file of the store
(recursively, binary-safe), the build's stdout and stderr, ``--explain`` (text and json), and
``pybuild history``/``inspect``.  The steps also leave the sha256 of what they read, so the
test knows the values were really there.  The differential with BuildKit is in
test_buildkit_differential.py (secret-* cases)."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import stat
import tarfile
from pathlib import Path

import pytest
from buildfixtures import build, make_context, pybuild

FILE_SECRET = "file-" + secrets.token_hex(40)
ENV_SECRET = "env-" + secrets.token_hex(40)

BUILDFILE = """\
FROM pbtest/busybox:base AS app
RUN --mount=type=secret,id=api sha256sum /run/secrets/api | cut -d' ' -f1 > /api.sha256 && cat /run/secrets/api
RUN --mount=type=secret,id=token,env=TOKEN printf %s "$TOKEN" | sha256sum | cut -d' ' -f1 > /token.sha256 \\
    && echo "token is $TOKEN"
RUN --mount=type=secret,id=api,target=/etc/app/key,mode=0400 --mount=type=secret,id=token,target=/tmp/t \\
    cp /etc/app/key /tmp/copy && cat /tmp/copy /tmp/t > /dev/null && rm /tmp/copy && ls /etc/app
FROM pbtest/busybox:base AS other
RUN --mount=type=secret,id=api,required cat /run/secrets/api > /dev/null && echo ok > /ok
FROM app
COPY --from=other /ok /ok
CMD ["cat", "/api.sha256", "/token.sha256"]
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def secret_build(store_root, tmp_path):
    """The Buildfile built three times (plain, --explain, --explain=json; --no-cache so
    every step runs) with the file secret and the env secret; returns what was printed."""
    ctx = make_context(tmp_path / "ctx")
    secret_file = tmp_path / "api.txt"
    secret_file.write_text(FILE_SECRET + "\n")
    args = ("--secret", f"id=api,src={secret_file}", "--secret", "id=token,env=PB_TOKEN")
    env = {"PB_TOKEN": ENV_SECRET}
    printed = []
    for extra in ((), ("--explain",), ("--explain=json",)):
        built = build(store_root, ctx, "--no-cache", *args, *extra, buildfile=BUILDFILE, tag="app:secret", env=env)
        printed.append(built.proc.stdout + built.proc.stderr)
    return built, printed


def assert_absent(data: bytes, where: str) -> None:
    for value in (FILE_SECRET, ENV_SECRET):
        assert value.encode() not in data, f"a secret value is in {where}"


def test_secrets_reach_the_steps(secret_build, store_root):
    built, printed = secret_build
    run = pybuild("run", "app:secret", root=store_root)
    assert run.stdout.split() == [sha(FILE_SECRET + "\n"), sha(ENV_SECRET)]
    # BuildKit 20.10 prints secrets; pybuild masks them, whole or line by line
    assert "[2/9] ****" in printed[0] and "[3/9] token is ****" in printed[0]
    assert "[4/9] key" in printed[0]


def test_secret_values_are_nowhere(secret_build, store_root, tmp_path):
    built, printed = secret_build
    for n, text in enumerate(printed):
        assert_absent(text.encode(), f"build output {n}")
    for args in (("history", "--no-trunc", "app:secret"), ("inspect", "app:secret"), ("images",), ("df",)):
        assert_absent(pybuild(*args, root=store_root).stdout.encode(), f"pybuild {args[0]}")
    # the saved image: the archive itself, and every layer in it unpacked
    saved = tmp_path / "saved.tar"
    pybuild("save", "app:secret", "-o", str(saved), root=store_root)
    assert_absent(saved.read_bytes(), "the saved archive")
    layers = 0
    with tarfile.open(saved) as archive:
        for member in archive.getmembers():
            data = archive.extractfile(member).read() if member.isfile() else b""
            assert_absent(member.name.encode() + data, f"archive entry {member.name}")
            if member.name.endswith((".tar", "layer.tar")) or member.name.startswith("blobs/"):
                try:
                    layer = tarfile.open(fileobj=io.BytesIO(data))
                except tarfile.TarError:
                    continue
                layers += 1
                for entry in layer.getmembers():
                    content = layer.extractfile(entry).read() if entry.isfile() else b""
                    assert_absent(entry.name.encode() + entry.linkname.encode() + content,
                                  f"layer entry {entry.name}")
    assert layers >= 4, "the archive's layers were not found"
    # every file of the store, whatever it is (blobs, unpacked layer dirs, cache entries, …)
    files = 0
    for dirpath, _, names in os.walk(store_root):
        for name in names:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                assert_absent(os.readlink(path).encode(), str(path))
            elif stat.S_ISREG(st.st_mode):
                assert_absent(path.read_bytes(), str(path))
                files += 1
            assert_absent(name.encode(), f"the name {path}")
    assert files > 50                      # blobs, configs, manifests, layer dirs, cache entries


def test_secret_changes_no_cache_key(store_root, tmp_path):
    """A secret's value is not part of the step's key (as in BuildKit): another value is a
    cache hit, so a rotated token does not rebuild — and the old value is not in the key."""
    ctx = make_context(tmp_path / "ctx")
    text = "FROM pbtest/busybox:base\nRUN --mount=type=secret,id=s wc -c < /run/secrets/s > /n\n"
    for value in ("first-value", "second-value-longer"):
        (tmp_path / "s").write_text(value)
        built = build(store_root, ctx, "--secret", f"id=s,src={tmp_path / 's'}", buildfile=text, tag="k")
    assert "[2/2]" not in built.proc.stdout and " ---> layer" not in built.proc.stdout
    assert pybuild("run", "k", "cat", "/n", root=store_root).stdout.strip() == "11"


FAILS = [
    # a required secret not given fails the step: exit 1, names the secret, says how to give it
    pytest.param("RUN --mount=type=secret,id=npmrc,required true\n", (),
                 ("step 2/2", "secret npmrc is required but was not given",
                  "--secret id=npmrc,src=FILE", "id=npmrc,env=VAR"), id="required-missing"),
    pytest.param("RUN --mount=type=secret,id=npmrc,required=true,env=NPM_TOKEN true\n", (),
                 ("secret npmrc is required",), id="required-env-missing"),
    # the file of --secret src= does not exist
    pytest.param("RUN --mount=type=secret,id=s true\n", ("--secret", "id=s,src=/nonexistent/file"),
                 ("--secret id=s: read /nonexistent/file",), id="src-missing"),
    # the variable of --secret env= is not set
    pytest.param("RUN --mount=type=secret,id=s true\n", ("--secret", "id=s,env=PB_UNSET_VARIABLE"),
                 ("--secret id=s: environment variable PB_UNSET_VARIABLE is not set",), id="env-unset"),
    # a --secret value pybuild cannot read
    pytest.param("RUN true\n", ("--secret", "src=/x"), ("expected id=ID,src=FILE or id=ID,env=VAR",),
                 id="no-id"),
]


@pytest.mark.parametrize("line, args, messages", FAILS)
def test_secret_errors(line, args, messages, session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    built = build(session_store, ctx, "--no-cache", *args, buildfile="FROM pbtest/busybox:base\n" + line,
                  tag="failed/secret", check=False)
    assert built.proc.returncode in (1, 2), built.proc.stderr
    for message in messages:
        assert message in built.proc.stderr, built.proc.stderr
    assert built.image_id is None


def test_optional_secret_not_given_is_no_mount(session_store, tmp_path):
    """Not required and not given: the step runs without it, and leaves no stub behind (as
    BuildKit: test_buildkit_differential secret-target-mode-owner)."""
    ctx = make_context(tmp_path / "ctx")
    built = build(session_store, ctx, "--no-cache", buildfile="FROM pbtest/busybox:base\n"
                  "RUN --mount=type=secret,id=absent ls /run/secrets/absent 2>&1; echo ${TOKEN:-unset}\n"
                  "RUN --mount=type=secret,id=absent,env=TOKEN echo ${TOKEN:-unset}\n")
    assert "No such file or directory" in built.proc.stdout
    assert "[3/3] unset" in built.proc.stdout
