"""ADD of a URL: the file is downloaded into the build's scratch dir (mode 0600, mtime from
Last-Modified, never extracted), and checked against ``--checksum`` when given."""

from __future__ import annotations

import email.utils
import hashlib
import posixpath
import urllib.parse
from pathlib import Path

from builder.context.item import Item
from builder.context.sources import Source
from builder.errors import ContextError
from builder.oci.digest import CHUNK, sha256_file


def download(url: str, into: Path, want_sha256: str | None = None) -> Item:
    """Fetch ``url`` (ADD) into ``into``; the file keeps the URL path's base name.
    With ``want_sha256`` (``--checksum=sha256:<hex>``) the content must hash to it."""
    import requests  # only ADD of a URL needs it

    name = posixpath.basename(urllib.parse.urlparse(url).path) or "__unnamed__"
    target = into / f"download-{hashlib.sha256(url.encode()).hexdigest()[:16]}" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with requests.get(url, stream=True, timeout=60) as resp:
            resp.raise_for_status()
            with open(target, "wb") as f:
                for chunk in resp.iter_content(CHUNK):
                    f.write(chunk)
            modified = resp.headers.get("Last-Modified")
    except requests.RequestException as e:
        raise ContextError(f"ADD {url}: download failed: {e}") from e
    if want_sha256 is not None:
        got = sha256_file(target)[0].removeprefix("sha256:")
        if got != want_sha256:
            raise ContextError(f"ADD {url}: digest mismatch: expected sha256:{want_sha256}, "
                               f"got sha256:{got}")
    mtime = 0
    if modified:
        try:
            mtime = int(email.utils.parsedate_to_datetime(modified).timestamp())
        except (TypeError, ValueError):
            mtime = 0
    source = Source(path=target, name=name, rel=url, is_dir=False)
    return Item(source=source, mode=0o600, mtime=mtime)
