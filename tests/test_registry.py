"""Registries (issue 6), against the REAL reference registry: Debian's ``docker-registry``
(distribution 2.8) started on 127.0.0.1 with a config of our own, stopped by its pid.
Two store roots act as two machines.  Nothing here touches an address other than 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from buildfixtures import build, make_context
from conftest import pybuild
from dockerd import require_tool
from registryd import Registry, free_port

from builder.errors import RegistryError
from builder.registry.auth import parse_www_authenticate
from builder.registry.push import push
from builder.registry.reference import parse_reference
from builder.store.store import Store

BASE = "pbtest/busybox:base"


class CountingSession(requests.Session):
    """Records (method, path) of every request sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def request(self, method, url, *args, **kw):
        self.sent.append((method.upper(), requests.utils.urlparse(url).path))
        return super().request(method, url, *args, **kw)


def image_of(root: Path, ref: str) -> tuple[str, list[str]]:
    store = Store(root)
    image_id = store.resolve(ref)
    return image_id, json.loads(store.image_config(image_id))["rootfs"]["diff_ids"]


# -- push, pull, run ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_push_then_pull_on_a_second_machine(registry, store_root, tmp_path, fmt):
    dest = f"{registry.host}/team/base:1.2"
    out = pybuild("push", BASE, dest, "--format", fmt, root=store_root).stdout
    assert "pushed" in out, out
    manifest = requests.get(f"{registry.url}/v2/team/base/manifests/1.2",
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                                               "application/vnd.docker.distribution.manifest.v2+json"}).json()
    assert manifest["mediaType"].startswith("application/vnd.oci" if fmt == "oci" else "application/vnd.docker")

    machine_b = tmp_path / "b"
    out = pybuild("pull", dest, root=machine_b).stdout
    assert dest in out
    assert image_of(machine_b, dest) == image_of(store_root, BASE)
    run = pybuild("run", dest, "echo", "hello from the registry", root=machine_b)
    assert "hello from the registry" in run.stdout

    again = pybuild("pull", dest, root=machine_b).stdout       # every layer is there already
    assert "already in the store" in again and ": pulled" not in again


def test_second_push_uploads_no_layer(registry, store_root):
    dest = f"{registry.host}/team/twice:1"
    store = Store(store_root)
    first = push(store, BASE, dest)
    assert first.uploaded and not first.existed
    session = CountingSession()
    second = push(store, BASE, dest, session=session)
    assert second.uploaded == [] and len(second.existed) == 2          # a layer and the config
    uploads = [(m, p) for m, p in session.sent if m in ("POST", "PATCH") or (m == "PUT" and "/blobs/" in p)]
    assert uploads == [], session.sent
    assert second.manifest_digest == first.manifest_digest           # same compressed bytes

    # another repository of the same registry: the layer is mounted, not uploaded
    third = push(store, BASE, f"{registry.host}/other/copy:1", session=CountingSession())
    assert third.uploaded == [] and len(third.mounted) == 2


def test_streamed_upload_of_a_large_blob(registry, store_root, tmp_path):
    """monolithic_max=0 forces POST + PATCH + PUT for every blob; the pull must verify."""
    dest = f"{registry.host}/team/streamed:1"
    session = CountingSession()
    push(Store(store_root), BASE, dest, session=session, monolithic_max=0)
    assert any(m == "PATCH" for m, _ in session.sent)
    pybuild("pull", dest, root=tmp_path / "b")
    assert image_of(tmp_path / "b", dest) == image_of(store_root, BASE)


def test_tampered_blob_is_refused_and_nothing_is_stored(registry, store_root, tmp_path):
    dest = f"{registry.host}/team/tampered:1"
    result = push(Store(store_root), BASE, dest)
    layer = next(d for d in result.uploaded if d != Store(store_root).resolve(BASE))
    blob = registry.blob_file(layer)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))

    machine_b = tmp_path / "b"
    proc = pybuild("pull", dest, root=machine_b, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "digest mismatch" in proc.stderr and "refused" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    store = Store(machine_b)
    assert store.tags() == {} and store.image_ids() == []
    assert list((machine_b / "layers").iterdir()) == []
    assert [p for p in (machine_b / "tmp").iterdir()] == []


def test_pull_errors_are_clear(registry, tmp_path):
    root = tmp_path / "s"
    for ref, needle in [
        (f"{registry.host}/team/nothere:1", "not found"),                    # 404 names the tag
        (f"127.0.0.1:{free_port()}/team/x:1", "cannot reach registry"),       # nothing listens
        ("Team/Upper:1", "must be lowercase"),                               # bad name
    ]:
        proc = pybuild("pull", ref, root=root, check=False)
        assert proc.returncode == 1 and needle in proc.stderr, (ref, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert "team/nothere:1" in pybuild("pull", f"{registry.host}/team/nothere:1", root=root,
                                       check=False).stderr


# -- htpasswd (Basic) auth ---------------------------------------------------------------------
@pytest.fixture
def auth_registry(tmp_path):
    htpasswd = require_tool("htpasswd")
    (tmp_path / "areg").mkdir()
    users = tmp_path / "areg" / "htpasswd"
    line = subprocess.run([htpasswd, "-Bbn", "alice", "s3cret"], check=True, capture_output=True,
                          text=True).stdout.strip()
    assert line.startswith("alice:$2y$")                    # bcrypt: the only kind v2.8 accepts
    users.write_text(line + "\n")
    reg = Registry(tmp_path / "areg", htpasswd=users).start()
    yield reg
    reg.stop()


def test_htpasswd_wrong_then_right_password(auth_registry, store_root, tmp_path):
    dest = f"{auth_registry.host}/team/secret:1"
    proc = pybuild("push", BASE, dest, root=store_root, check=False)       # no credentials yet
    assert proc.returncode == 1 and "unauthorized" in proc.stderr and "pybuild login" in proc.stderr, proc.stderr

    proc = pybuild("login", auth_registry.host, "-u", "alice", "--password-stdin", root=store_root,
                   input="wrong\n", check=False)
    assert proc.returncode == 1 and "unauthorized" in proc.stderr and "'alice'" in proc.stderr, proc.stderr
    assert not (store_root / "auth.json").exists(), "a refused login stores nothing"

    pybuild("login", auth_registry.host, "-u", "alice", "--password-stdin", root=store_root, input="s3cret\n")
    auth = store_root / "auth.json"
    assert (auth.stat().st_mode & 0o777) == 0o600
    entry = json.loads(auth.read_text())["auths"][auth_registry.host]["auth"]
    assert base64.b64decode(entry) == b"alice:s3cret"
    pybuild("push", BASE, dest, root=store_root)

    machine_b = tmp_path / "b"
    Store(machine_b)
    (machine_b / "auth.json").write_text(json.dumps(            # stale password on machine B
        {"auths": {auth_registry.host: {"auth": base64.b64encode(b"alice:old").decode()}}}))
    proc = pybuild("pull", dest, root=machine_b, check=False)
    assert proc.returncode == 1 and "user 'alice' from" in proc.stderr and "auth.json" in proc.stderr, proc.stderr
    pybuild("login", auth_registry.host, "-u", "alice", "--password-stdin", root=machine_b, input="s3cret\n")
    pybuild("pull", dest, root=machine_b)
    assert image_of(machine_b, dest) == image_of(store_root, BASE)


def test_docker_config_json_credentials_are_read(auth_registry, store_root, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(json.dumps(
        {"auths": {f"http://{auth_registry.host}": {"auth": base64.b64encode(b"alice:s3cret").decode()}}}))
    monkeypatch.setenv("HOME", str(home))
    result = push(Store(store_root), BASE, f"{auth_registry.host}/team/fromhome:1")
    assert result.manifest_digest.startswith("sha256:")


# -- references and challenges (pure) ----------------------------------------------------------
@pytest.mark.parametrize("text, domain, path, tag, digest", [
    ("debian", "docker.io", "library/debian", "latest", None),          # docker.io + library/
    ("debian:bookworm", "docker.io", "library/debian", "bookworm", None),
    ("me/app:1", "docker.io", "me/app", "1", None),                     # no library/ with a user
    ("index.docker.io/library/alpine", "docker.io", "library/alpine", "latest", None),
    ("127.0.0.1:5000/team/base:1.2", "127.0.0.1:5000", "team/base", "1.2", None),
    ("localhost/app", "localhost", "app", "latest", None),              # localhost is a host
    ("quay.io/a/b/c:v1", "quay.io", "a/b/c", "v1", None),
    ("alpine@sha256:" + "a" * 64, "docker.io", "library/alpine", None, "sha256:" + "a" * 64),
    ("host:5000/x:t@sha256:" + "b" * 64, "host:5000", "x", "t", "sha256:" + "b" * 64),
])
def test_reference_parsing(text, domain, path, tag, digest):
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)


@pytest.mark.parametrize("text, needle", [
    ("Upper/Case", "lowercase"),
    ("app:bad tag", "whitespace"),
    ("app@sha256:abc", "not a sha256"),
    ("app:-x", "bad tag"),
    ("a//b", "bad repository name"),
    ("", "empty"),
])
def test_reference_errors(text, needle):
    with pytest.raises(RegistryError, match=needle):
        parse_reference(text)


def test_familiar_names():
    assert parse_reference("docker.io/library/debian").familiar == "debian:latest"
    assert parse_reference("127.0.0.1:5000/team/base:1.2").familiar == "127.0.0.1:5000/team/base:1.2"
    assert parse_reference("debian").api_host == "registry-1.docker.io"


@pytest.mark.parametrize("header, expected", [
    # the usual Bearer challenge; the scope holds a comma inside quotes
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
     'scope="repository:library/debian:pull,push"',
     [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                  "scope": "repository:library/debian:pull,push"})]),
    # several scopes, space-separated, one with a host:port in the name
    ('Bearer realm="http://127.0.0.1:1/t", scope="repository:127.0.0.1:5000/a:pull repository:b:pull,push"',
     [("bearer", {"realm": "http://127.0.0.1:1/t",
                  "scope": "repository:127.0.0.1:5000/a:pull repository:b:pull,push"})]),
    # insufficient_scope with an error description containing a comma and an escaped quote
    ('Bearer realm="r",error="insufficient_scope",error_description="need \\"push\\", sorry"',
     [("bearer", {"realm": "r", "error": "insufficient_scope", "error_description": 'need "push", sorry'})]),
    ('Basic realm="test-realm"', [("basic", {"realm": "test-realm"})]),
    # two challenges in one header; unquoted token values
    ('Negotiate abc==, Basic realm=x, charset="UTF-8"',
     [("negotiate", {"": "abc=="}), ("basic", {"realm": "x", "charset": "UTF-8"})]),
    ('BEARER Realm="r"', [("bearer", {"realm": "r"})]),            # case-insensitive scheme/keys
    ("", []),
])
def test_www_authenticate_parsing(header, expected):
    got = [(c.scheme, c.params) for c in parse_www_authenticate(header)]
    assert got == expected


def test_several_scopes_are_split():
    [c] = parse_www_authenticate('Bearer realm="r",scope="repository:a:pull repository:b:push"')
    assert c.scopes == ["repository:a:pull", "repository:b:push"]


# -- Bearer tokens: a token endpoint and a guard in front of the real registry ----------------
class BearerGuard:
    """An http.server on 127.0.0.1 that serves ``/token`` (a tiny token endpoint) and forwards
    GET/HEAD ``/v2/…`` to the real registry only with a Bearer token carrying the right scopes.
    Blobs additionally need ``repository:team/shared:pull``, which the registry announces as
    ``insufficient_scope``, as a registry does for a blob mounted from another repository."""

    EXTRA = "repository:team/shared:pull"

    def __init__(self, upstream: str, *, users: dict[str, str] | None = None) -> None:
        self.upstream = upstream
        self.users = users or {}
        self.tokens: dict[str, set[str]] = {}
        self.token_requests: list[tuple[list[str], str | None]] = []   # (scopes, basic user)
        guard = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                guard.handle(self, "GET")

            def do_HEAD(self):
                guard.handle(self, "HEAD")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = requests.utils.urlparse(h.path)
        if url.path == "/token":
            return self.issue(h, url.query)
        parts = url.path.split("/")
        name = "/".join(parts[2:-2]) if len(parts) > 4 else ""
        need = {f"repository:{name}:pull"} if name else set()
        if "/blobs/" in url.path:
            need.add(self.EXTRA)
        token = h.headers.get("Authorization", "").removeprefix("Bearer ")
        granted = self.tokens.get(token)
        if granted is None or not need <= granted:
            challenge = f'Bearer realm="http://{self.host}/token",service="guard"'
            if need:
                challenge += f',scope="{" ".join(sorted(need))}"'
            if granted is not None:
                challenge += ',error="insufficient_scope"'
            return self.reply(h, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}',
                              {"WWW-Authenticate": challenge, "Content-Type": "application/json"})
        resp = requests.request(method, f"{self.upstream}{h.path}", timeout=30,
                                headers={"Accept": h.headers.get("Accept", "*/*")})
        keep = {k: v for k, v in resp.headers.items()
                if k.lower() in ("content-type", "docker-content-digest")}
        self.reply(h, resp.status_code, resp.content, keep, head=method == "HEAD")

    def issue(self, h: BaseHTTPRequestHandler, query: str) -> None:
        from urllib.parse import parse_qs
        q = parse_qs(query)
        user = None
        basic = h.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            if self.users.get(user) != password:
                return self.reply(h, 401, b'{"details":"bad credentials"}', {})
        scopes = " ".join(q.get("scope", [])).split()
        self.token_requests.append((scopes, user))
        if q.get("service") != ["guard"]:
            return self.reply(h, 400, b"wrong service", {})
        token = hashlib.sha256(os.urandom(16)).hexdigest()
        self.tokens[token] = set(scopes)
        body = json.dumps({"access_token": token, "expires_in": 300}).encode()
        self.reply(h, 200, body, {"Content-Type": "application/json"})

    @staticmethod
    def reply(h, status: int, body: bytes, headers: dict[str, str], head: bool = False) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def __enter__(self) -> BearerGuard:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_bearer_token_flow_with_insufficient_scope_retry(registry, store_root, tmp_path):
    push(Store(store_root), BASE, f"{registry.host}/team/base:1")
    with BearerGuard(registry.url) as guard:
        machine_b = tmp_path / "b"
        pybuild("pull", f"{guard.host}/team/base:1", root=machine_b)     # anonymous tokens
        assert image_of(machine_b, f"{guard.host}/team/base:1") == image_of(store_root, BASE)
        first, second = guard.token_requests[0], guard.token_requests[-1]
        assert first == (["repository:team/base:pull"], None)
        # the blob's insufficient_scope added the extra scope to the same token request
        assert sorted(second[0]) == ["repository:team/base:pull", BearerGuard.EXTRA] and second[1] is None

        guard.users["bob"] = "pw"
        guard.token_requests.clear()
        machine_c = tmp_path / "c"
        Store(machine_c)
        (machine_c / "auth.json").write_text(json.dumps(
            {"auths": {guard.host: {"auth": base64.b64encode(b"bob:pw").decode()}}}))
        pybuild("pull", f"{guard.host}/team/base:1", root=machine_c)
        assert {user for _, user in guard.token_requests} == {"bob"}   # credentials go to the realm

        (machine_c / "auth.json").write_text(json.dumps(
            {"auths": {guard.host: {"auth": base64.b64encode(b"bob:nope").decode()}}}))
        proc = pybuild("pull", f"{guard.host}/team/base:1", root=tmp_path / "c", check=False)
        assert proc.returncode == 1 and "token server" in proc.stderr and "'bob'" in proc.stderr, proc.stderr


def test_registry_that_sends_garbage_and_rate_limits(tmp_path):
    """Non-JSON error bodies and 429 Retry-After become clear errors, not tracebacks."""
    replies = {"/v2/team/garbage/manifests/1": (500, b"<html>oops</html>", {}),
               "/v2/team/busy/manifests/1": (429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
                                             {"Retry-After": "42"}),
               "/v2/team/notjson/manifests/1": (200, b"not json at all",
                                                {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            status, body, headers = replies.get(self.path, (404, b"404 page not found", {}))
            BearerGuard.reply(self, status, body, headers)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{server.server_port}"
        for name, needle in [("garbage", "non-JSON body: '<html>oops</html>'"),
                             ("busy", "retry after 42 seconds"),
                             ("notjson", "not JSON"),
                             ("missing", "404 page not found")]:
            proc = pybuild("pull", f"{host}/team/{name}:1", root=tmp_path / "s", check=False)
            assert proc.returncode == 1 and needle in proc.stderr, (name, proc.stderr)
            assert "Traceback" not in proc.stderr
    finally:
        server.shutdown()
        server.server_close()


# -- other tools read what we push, and we read what they push --------------------------------
def test_skopeo_inspect_and_docker_pull_run_our_push(registry, store_root):
    from dockerd import DockerDaemon
    skopeo = require_tool("skopeo")
    dest = f"{registry.host}/team/forthem:1"
    pybuild("push", BASE, dest, "--format", "docker", root=store_root)
    info = json.loads(subprocess.run([skopeo, "inspect", "--tls-verify=false", f"docker://{dest}"],
                                     check=True, capture_output=True, text=True).stdout)
    image_id, diff_ids = image_of(store_root, BASE)
    assert len(info["Layers"]) == len(diff_ids)
    with DockerDaemon() as docker:
        docker.run("pull", dest)                        # 127.0.0.0/8 is insecure for docker by default
        assert docker.run("image", "inspect", "-f", "{{.Id}}", dest).stdout.strip() == image_id
        out = docker.run("run", "--rm", "--network", "none", dest, "echo", "hi from docker").stdout
        assert "hi from docker" in out


def _blob(layout: Path, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def test_pull_picks_the_host_platform_from_a_skopeo_pushed_index(registry, store_root, tmp_path):
    """An OCI layout made by hand (an attestation-like entry, another arch first, ours second),
    copied into the registry by skopeo; pybuild pulls our architecture."""
    from builder.oci.config import host_architecture
    from builder.registry.push import compressed_layer
    skopeo = require_tool("skopeo")
    store = Store(store_root)
    ours = host_architecture()
    other = "arm64" if ours != "arm64" else "amd64"
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def image(config: bytes, layer_blobs: list[bytes]) -> dict:
        layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(layout, b)}
                  for b in layer_blobs]
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, config)},
                    "layers": layers}
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                **_blob(layout, json.dumps(manifest).encode())}

    image_id, diff_ids = image_of(store_root, BASE)
    ours_desc = image(store.image_config(image_id),
                      [store.read_blob(compressed_layer(store, d).digest) for d in diff_ids])
    import gzip
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("other-arch")
        tar.addfile(info, io.BytesIO(b""))
    diff_id = "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()
    other_config = json.dumps({"architecture": other, "os": "linux",
                               "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    other_desc = image(other_config, [gzip.compress(buf.getvalue(), mtime=0)])
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {**other_desc, "platform": {"os": "unknown", "architecture": "unknown"},      # attestation-like
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        {**other_desc, "platform": {"os": "linux", "architecture": other}},         # first, not ours
        {**ours_desc, "platform": {"os": "linux", "architecture": ours}},
    ]}
    index_desc = {"mediaType": "application/vnd.oci.image.index.v1+json", **_blob(layout, json.dumps(index).encode()),
                  "annotations": {"org.opencontainers.image.ref.name": "multi"}}
    (layout / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [index_desc]}))
    dest = f"{registry.host}/team/multi:1"
    subprocess.run([skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:multi",
                    f"docker://{dest}"], check=True, capture_output=True)

    machine_b = tmp_path / "b"
    pybuild("pull", dest, root=machine_b)
    assert image_of(machine_b, dest) == (image_id, diff_ids)
    assert "hi" in pybuild("run", dest, "echo", "hi", root=machine_b).stdout

    # and as a FROM on a machine that has nothing: pulled (our architecture), then built
    machine_c = tmp_path / "c"
    ctx = make_context(tmp_path / "ctx", {"Buildfile": f"FROM {dest}\nRUN uname -m > /arch\n"})
    build(machine_c, ctx, tag="on-multi", env={"PYBUILD_PULL": "missing"})
    assert image_of(machine_c, dest) == (image_id, diff_ids)


def test_broken_blob_download_is_resumed_via_a_redirect(registry, store_root, tmp_path):
    """The first blob GET breaks off halfway; the retry asks for the rest with Range and is
    redirected (307) to the real registry, as a CDN would; the image still verifies."""
    push(Store(store_root), BASE, f"{registry.host}/team/flaky:1")
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.append((self.path, self.headers.get("Range")))
            upstream = f"{registry.url}{self.path}"
            if "/blobs/" in self.path and len([p for p, _ in seen if p == self.path]) == 1:
                data = requests.get(upstream, timeout=30).content
                if len(data) > 1000:                               # a layer: break it off
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
            if "/blobs/" in self.path:
                self.send_response(307)
                self.send_header("Location", upstream)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            resp = requests.get(upstream, timeout=30, headers={"Accept": self.headers.get("Accept", "*/*")})
            BearerGuard.reply(self, resp.status_code, resp.content,
                              {k: v for k, v in resp.headers.items() if k.lower() == "content-type"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ref = f"127.0.0.1:{server.server_port}/team/flaky:1"
        pybuild("pull", ref, root=tmp_path / "b")
        assert image_of(tmp_path / "b", ref) == image_of(store_root, BASE)
        assert any(r and r != "bytes=0-" for _, r in seen), seen      # the rest was asked for
    finally:
        server.shutdown()
        server.server_close()


def test_pull_of_a_zstd_layer(registry, tmp_path):
    """An OCI image whose layer is tar+zstd (pushed by skopeo): pulled, diffID verified."""
    import io
    import tarfile

    import zstandard
    skopeo = require_tool("skopeo")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    raw = buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                            **_blob(layout, zstandard.ZstdCompressor().compress(raw))}]}
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            **_blob(layout, json.dumps(manifest).encode()),
            "annotations": {"org.opencontainers.image.ref.name": "z"}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    dest = f"{registry.host}/team/zstd:1"
    subprocess.run([skopeo, "copy", "--dest-tls-verify=false", f"oci:{layout}:z", f"docker://{dest}"],
                   check=True, capture_output=True)
    pybuild("pull", dest, root=tmp_path / "store")
    store = Store(tmp_path / "store")
    assert json.loads(store.image_config(store.resolve(dest)))["rootfs"]["diff_ids"] == [diff_id]
    assert (store.layer_dir(diff_id) / "hello.txt").read_bytes() == b"hello\n"
