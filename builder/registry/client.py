"""One registry, over HTTP: a ``requests.Session`` plus the auth dance, manifests and blobs.

Plain http for loopback hosts and ``insecure=True``, https otherwise.  Every request carries
the scopes it needs (``repository:<path>:pull[,push]``); a 401 answers with a challenge that we
meet once (Basic with stored credentials, or a Bearer token from the realm, retried when the
registry says ``insufficient_scope``).  Failures become RegistryError naming the host, the
repository and what was tried.  Blobs are verified (size and digest) before anyone sees them.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from urllib.parse import urljoin

import requests

from builder.errors import RegistryError
from builder.oci.digest import CHUNK, sha256_bytes
from builder.oci.manifest import INDEX_TYPES, MANIFEST_TYPES
from builder.registry.auth import (
    BearerToken,
    Challenge,
    Credentials,
    load_credentials,
    parse_www_authenticate,
    token_from_response,
)
from builder.registry.reference import RegistryRef
from builder.store.store import Store

ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
#: Network reads (not CHUNK, the local file read size): small, so that progress moves and a
#: broken transfer keeps all but the last few KiB.
NET_CHUNK = 64 << 10
RETRIES = 3


def pull_scope(path: str) -> str:
    return f"repository:{path}:pull"


def push_scope(path: str) -> str:
    return f"repository:{path}:pull,push"


class RegistryClient:
    """Talks to the registry of ``ref.domain``.  ``credentials`` may be None (anonymous)."""

    def __init__(self, ref: RegistryRef, *, credentials: Credentials | None = None,
                 insecure: bool = False, session: requests.Session | None = None,
                 timeout: float = 60.0) -> None:
        self.host = ref.domain
        scheme = "http" if insecure or ref.is_loopback else "https"
        self.base = f"{scheme}://{ref.api_host}"
        self.credentials = credentials
        self.session = session or requests.Session()
        self.timeout = timeout
        self._challenge: Challenge | None = None     # the last Bearer/Basic challenge met
        self._token: BearerToken | None = None

    # -- the request loop --------------------------------------------------------------------
    def request(self, method: str, url: str, *, scopes: tuple[str, ...], what: str,
                expect: tuple[int, ...] = (200,), headers: dict[str, str] | None = None,
                data=None, stream: bool = False, allow_redirects: bool = True) -> requests.Response:
        """Send, meet auth challenges, and return a response whose status is in ``expect``;
        anything else raises RegistryError saying ``what`` failed.  ``url`` may be relative to
        the registry (``/v2/…``).  A file-like ``data`` is rewound before a retry."""
        url = urljoin(self.base, url)
        wanted = set(scopes)
        for attempt in range(4):
            hdrs = dict(headers or {})
            auth = self._authorization(wanted)
            if auth:
                hdrs["Authorization"] = auth
            if attempt and hasattr(data, "seek"):
                data.seek(0)
            try:
                resp = self.session.request(method, url, headers=hdrs, data=data, stream=stream,
                                            timeout=self.timeout, allow_redirects=allow_redirects)
            except requests.ConnectionError as e:
                raise RegistryError(f"{what}: cannot reach registry {self.host} ({self.base}): "
                                    f"{_reason(e)}") from e
            except requests.Timeout as e:
                raise RegistryError(f"{what}: registry {self.host} did not answer within "
                                    f"{self.timeout:.0f}s") from e
            if resp.status_code in expect:
                return resp
            if resp.status_code == 401 and self._meet(resp, wanted, sent=auth):
                resp.close()
                continue
            raise self._failure(resp, what, sent=auth)
        raise self._failure(resp, what, sent=auth)

    def _authorization(self, scopes: set[str]) -> str | None:
        c = self._challenge
        if c is None:
            return None
        if c.scheme == "basic":
            return self.credentials.basic_header() if self.credentials else None
        if self._token is None or not self._token.covers(scopes):
            self._token = self._fetch_token(scopes | set(self._token.scopes if self._token else ()))
        return f"Bearer {self._token.token}"

    def _meet(self, resp: requests.Response, scopes: set[str], *, sent: str | None) -> bool:
        """Take a 401's challenge into account; False if retrying cannot help."""
        challenges = parse_www_authenticate(resp.headers.get("WWW-Authenticate", ""))
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme:
            c = by_scheme["bearer"]
            if "realm" not in c.params:
                raise RegistryError(f"registry {self.host}: Bearer challenge without a realm")
            more = set(c.scopes) if c.params.get("error") == "insufficient_scope" else set()
            if sent and sent.startswith("Bearer ") and not (more - (self._token.scopes if self._token else set())):
                return False                        # a token for these scopes was refused
            self._challenge = c
            self._token = self._fetch_token(scopes | more)
            return True
        if "basic" in by_scheme:
            if sent or self.credentials is None:
                return False                        # no credentials, or they were refused
            self._challenge = by_scheme["basic"]
            return True
        return False

    def _fetch_token(self, scopes: set[str]) -> BearerToken:
        assert self._challenge is not None
        realm = self._challenge.params["realm"]
        params: list[tuple[str, str]] = []
        if "service" in self._challenge.params:
            params.append(("service", self._challenge.params["service"]))
        params += [("scope", s) for s in sorted(scopes)]
        auth = (self.credentials.username, self.credentials.password) if self.credentials else None
        try:
            resp = self.session.get(realm, params=params, auth=auth, timeout=self.timeout)
        except requests.RequestException as e:
            raise RegistryError(f"token server {realm} for {self.host}: {_reason(e)}") from e
        if resp.status_code != 200:
            raise RegistryError(f"token server {realm} refused {self._tried()}: "
                                f"{resp.status_code} {_error_text(resp)}")
        try:
            body = resp.json()
        except ValueError:
            raise RegistryError(f"token server {realm} answered with a non-JSON body: "
                                f"{_snippet(resp)}") from None
        return token_from_response(body, frozenset(scopes), realm)

    def _tried(self) -> str:
        if self.credentials:
            return self.credentials.describe()
        return "anonymous access (no credentials stored; try `pybuild login`)"

    def _failure(self, resp: requests.Response, what: str, *, sent: str | None) -> RegistryError:
        code = resp.status_code
        text = _error_text(resp)
        if code == 401:
            return RegistryError(f"{what}: unauthorized at {self.host}: tried {self._tried()}: {text}")
        if code == 403:
            return RegistryError(f"{what}: access denied at {self.host} for {self._tried()}: {text}")
        if code == 404:
            return RegistryError(f"{what}: not found at {self.host}: {text}")
        if code == 429:
            after = resp.headers.get("Retry-After")
            when = f"retry after {after} seconds" if after and after.isdigit() else \
                f"retry after {after}" if after else "retry later"
            return RegistryError(f"{what}: too many requests to {self.host}; {when}: {text}")
        return RegistryError(f"{what}: registry {self.host} answered {code}: {text}")

    # -- read side ---------------------------------------------------------------------------
    def ping(self, path: str | None = None) -> None:
        """GET /v2/ (with auth): proves the registry is there and the credentials work."""
        scopes = (pull_scope(path),) if path else ()
        self.request("GET", "/v2/", scopes=scopes, what=f"log in to {self.host}")

    def get_manifest(self, path: str, reference: str) -> tuple[bytes, str, str]:
        """(exact bytes, media type, digest) of ``path:reference``.  By digest, the bytes are
        verified; by tag, a ``Docker-Content-Digest`` header must match the bytes."""
        what = f"get manifest {self.host}/{path}:{reference}" if not reference.startswith("sha256:") \
            else f"get manifest {self.host}/{path}@{reference}"
        resp = self.request("GET", f"/v2/{path}/manifests/{reference}", scopes=(pull_scope(path),),
                            what=what, headers={"Accept": ACCEPT})
        body = resp.content
        digest = sha256_bytes(body)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{what}: digest mismatch: the registry sent a manifest with "
                                f"digest {digest}; refused")
        header = resp.headers.get("Docker-Content-Digest")
        if header and header.startswith("sha256:") and header != digest:
            raise RegistryError(f"{what}: Docker-Content-Digest {header} does not match the "
                                f"manifest's digest {digest}; refused")
        try:
            obj = json.loads(body)
        except ValueError:
            raise RegistryError(f"{what}: the registry sent a manifest that is not JSON: "
                                f"{body[:120]!r}") from None
        content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        media = obj.get("mediaType") if isinstance(obj, dict) else None
        if media and content_type in INDEX_TYPES + MANIFEST_TYPES and media != content_type:
            raise RegistryError(f"{what}: Content-Type {content_type} but the manifest says {media}")
        media = media or content_type
        if media not in INDEX_TYPES + MANIFEST_TYPES:
            raise RegistryError(f"{what}: unsupported manifest type {media!r}")
        return body, media, digest

    def get_blob_bytes(self, path: str, digest: str, size: int, *, limit: int = 64 << 20) -> bytes:
        """A small blob (a config) in memory, verified."""
        if size > limit:
            raise RegistryError(f"blob {digest} in {self.host}/{path} is too big ({size} bytes)")
        what = f"get blob {digest} from {self.host}/{path}"
        data = self.request("GET", f"/v2/{path}/blobs/{digest}", scopes=(pull_scope(path),), what=what).content
        _check_blob(what, digest, size, len(data), sha256_bytes(data))
        return data

    def fetch_blob(self, path: str, digest: str, size: int, dest: Path, *, on_progress=None) -> None:
        """Download a blob to ``dest``, following redirects, resuming a broken transfer with
        ``Range``; raises RegistryError (and leaves ``dest`` for the caller to remove) unless
        its size and digest are what the descriptor says."""
        what = f"get blob {digest} from {self.host}/{path}"
        url = f"/v2/{path}/blobs/{digest}"
        h, got, failures = hashlib.sha256(), 0, 0
        with open(dest, "wb") as out:
            while True:
                headers = {"Range": f"bytes={got}-"} if got else {}
                try:
                    resp = self.request("GET", url, scopes=(pull_scope(path),), what=what,
                                        expect=(200, 206), headers=headers, stream=True)
                    with resp:
                        if got and resp.status_code == 200:        # no Range support: restart
                            out.seek(0)
                            out.truncate()
                            h, got = hashlib.sha256(), 0
                        for chunk in resp.iter_content(NET_CHUNK):
                            out.write(chunk)
                            h.update(chunk)
                            got += len(chunk)
                            if got > size:
                                break
                            if on_progress:
                                on_progress(got)
                except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError,
                        requests.Timeout, RegistryError) as e:
                    if isinstance(e, RegistryError) and "cannot reach" not in str(e) \
                            and "did not answer" not in str(e):
                        raise
                    failures += 1
                    if failures > RETRIES:
                        raise RegistryError(f"{what}: download failed {failures} times: {e}") from e
                    time.sleep(0.2 * failures)
                    continue
                if got < size and failures < RETRIES:
                    failures += 1                  # the stream ended early: resume it
                    continue
                break
        _check_blob(what, digest, size, got, "sha256:" + h.hexdigest())

    # -- write side --------------------------------------------------------------------------
    def has_blob(self, path: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{path}/blobs/{digest}", scopes=(push_scope(path),),
                            what=f"check blob {digest} in {self.host}/{path}", expect=(200, 404))
        return resp.status_code == 200

    def mount_blob(self, path: str, digest: str, source: str) -> bool:
        """Cross-repository mount from ``source``; True if mounted (else the upload session the
        registry opened instead is cancelled)."""
        resp = self.request("POST", f"/v2/{path}/blobs/uploads/?mount={digest}&from={source}",
                            scopes=(push_scope(path), pull_scope(source)),
                            what=f"mount blob {digest} from {source} into {self.host}/{path}",
                            expect=(201, 202), headers={"Content-Length": "0"})
        if resp.status_code == 201:
            return True
        location = resp.headers.get("Location")
        if location:
            try:
                self.request("DELETE", urljoin(resp.url, location), scopes=(push_scope(path),),
                             what="cancel upload", expect=(204, 404))
            except RegistryError:
                pass
        return False

    def upload_blob(self, path: str, digest: str, size: int, blob: Path, *, monolithic_max: int,
                    on_progress=None) -> None:
        """POST an upload session, then one PUT (small blobs) or one streamed PATCH and an empty
        PUT (large ones), always at the Location of the latest response.  ``on_progress`` gets
        the bytes sent so far."""
        what = f"upload blob {digest} to {self.host}/{path}"
        scopes = (push_scope(path),)
        resp = self.request("POST", f"/v2/{path}/blobs/uploads/", scopes=scopes, what=what,
                            expect=(202,), headers={"Content-Length": "0"})
        location = _location(resp, what)
        octet = {"Content-Type": "application/octet-stream"}
        with open(blob, "rb") as f:
            if size > monolithic_max:
                resp = self.request("PATCH", location, scopes=scopes, what=what, expect=(202,),
                                    headers={**octet, "Content-Length": str(size)},
                                    data=_Upload(f, size, on_progress))
                location = _location(resp, what)
                body, length = b"", 0
            else:
                body, length = f.read(), size
                if on_progress:
                    on_progress(size)
        sep = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{sep}digest={digest}", scopes=scopes, what=what,
                     expect=(201,), headers={**octet, "Content-Length": str(length)}, data=body)

    def put_manifest(self, path: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT the exact manifest bytes; returns their digest."""
        digest = sha256_bytes(body)
        self.request("PUT", f"/v2/{path}/manifests/{reference}", scopes=(push_scope(path),),
                     what=f"put manifest {self.host}/{path}:{reference}", expect=(201,),
                     headers={"Content-Type": media_type}, data=body)
        return digest


class _Upload:
    """A blob streamed as a request body: requests sends its chunks with the Content-Length
    ``__len__`` gives (never chunked encoding), and each chunk is reported."""

    def __init__(self, f, size: int, on_progress=None) -> None:
        self._f, self._size, self._report, self._sent = f, size, on_progress, 0

    def __len__(self) -> int:
        return self._size

    def __iter__(self):
        while chunk := self._f.read(CHUNK):
            self._sent += len(chunk)
            if self._report:
                self._report(self._sent)
            yield chunk


def _location(resp: requests.Response, what: str) -> str:
    location = resp.headers.get("Location")
    if not location:
        raise RegistryError(f"{what}: the registry sent no upload Location")
    return urljoin(resp.url, location)


def _check_blob(what: str, digest: str, size: int, got: int, actual: str) -> None:
    if got != size:
        raise RegistryError(f"{what}: size mismatch: expected {size} bytes, got {got}; refused")
    if actual != digest:
        raise RegistryError(f"{what}: digest mismatch: got {actual}; refused, nothing stored")


def _error_text(resp: requests.Response) -> str:
    """The registry's ``{"errors": [{code, message}]}`` as text, or a snippet of a non-JSON body."""
    if not resp.content:
        return f"HTTP {resp.status_code} {resp.reason or ''}".strip()
    try:
        errors = resp.json().get("errors")
        parts = [f"{e.get('code', '?')}: {e.get('message', '')}".rstrip(": ") for e in errors]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError, TypeError):
        pass
    return f"HTTP {resp.status_code}, non-JSON body: {_snippet(resp)}"


def _snippet(resp: requests.Response) -> str:
    text = resp.content[:200].decode("utf-8", "replace").strip()
    return repr(text)


def _reason(e: Exception) -> str:
    text = str(e)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker
    return text[:200]


def open_client(store: Store | None, ref: RegistryRef, *, insecure: bool = False,
                session: requests.Session | None = None) -> RegistryClient:
    """A client for ``ref``'s registry with the credentials stored for it (if any)."""
    creds = load_credentials(ref.domain, auth_file=store.auth_path() if store is not None else None)
    return RegistryClient(ref, credentials=creds, insecure=insecure, session=session)
