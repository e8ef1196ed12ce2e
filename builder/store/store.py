"""The local image store: content-addressed blobs, unpacked layer dirs by chain ID, and tags.

Where each of these lives under the root is layout.py's (``Store`` extends ``StoreLayout``,
so every path has one spelling); this module writes, reads and removes them.

Contracts: every write is temp + rename, so a reader sees a blob, layer or tag whole or not at
all; putting what is already there is a no-op (idempotent); a crashed writer leaves only
tmp/ entries, which the next Store() removes when no other process holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ImageNotFound, StoreError
from builder.oci.digest import chain_ids, is_digest, sha256_bytes, sha256_file
from builder.oci.manifest import manifest_bytes
from builder.store.layout import DIRS, LAYER_DIFF, LAYER_META, StoreLayout, live_prefix

DEFAULT_ROOT = "/var/lib/pybuild"


@dataclass(frozen=True)
class LayerInfo:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int


def default_root() -> Path:
    """Where the store is when no ``--root`` is given (see ``root_for``), for this process."""
    return root_for(os.environ, euid=os.geteuid(), home=os.path.expanduser("~"))


def root_for(environ: Mapping[str, str], *, euid: int, home: str) -> Path:
    """The store of a user: ``$PYBUILD_ROOT`` if set; else /var/lib/pybuild for root and
    ``$XDG_DATA_HOME/pybuild`` (``~/.local/share/pybuild`` when XDG_DATA_HOME is unset, empty or
    relative, as the XDG base directory spec says) for anyone else.  Pure."""
    if environ.get("PYBUILD_ROOT"):
        return Path(environ["PYBUILD_ROOT"])
    if euid == 0:
        return Path(DEFAULT_ROOT)
    data = environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data):
        data = os.path.join(home, ".local", "share")
    return Path(data) / "pybuild"


def normalize_tag(ref: str) -> str:
    """``webapp`` → ``webapp:latest``; a tag after the last ``/`` is kept."""
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:latest"


class Store(StoreLayout):
    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        try:
            # 0700, as docker's data root: layers hold what RUN made, setuid files and device
            # nodes too, which must not be reachable by the host's other users
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = self.root.stat()
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():      # made by an older pybuild
                os.chmod(self.root, 0o700)
            for sub in DIRS:
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"create store at {self.root}: {e.strerror}") from e
        self._sweep_tmp()

    # -- locking -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Held (shared) by every build for its whole run; prune takes it exclusively, so it
        never removes a layer a running build may be about to use."""
        with _flock(self.gc_lock_path(), fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        """Held by prune: no build runs meanwhile (exclusive counterpart of ``in_use``)."""
        with _flock(self.gc_lock_path(), fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def lock(self, shared: bool = False) -> Iterator[None]:
        """Hold the store lock (exclusive unless ``shared``) for the duration of the block.

        Not reentrant: set_tag, remove_tag, commit_layer and remove_image take it themselves,
        so never call them while holding it (flock on a second fd would wait for ourselves)."""
        with _flock(self.lock_path(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX):
            yield

    def _sweep_tmp(self) -> None:
        """Remove scratch dirs left by crashed writers; only when nobody else is using the store."""
        fd = os.open(self.lock_path(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            for entry, alive in self.scratch_entries():
                if not alive:
                    remove_entry(entry)
        finally:
            os.close(fd)

    def scratch_dir(self, prefix: str = "scratch") -> Path:
        """A fresh directory under tmp/ (same filesystem as the store); the caller removes it.

        Its name records our pid, so a concurrent Store() does not sweep it while we live."""
        return Path(tempfile.mkdtemp(prefix=live_prefix(prefix), dir=self.tmp_dir()))

    def temp_file(self, prefix: str) -> tuple[int, Path]:
        """A fresh file under tmp/, opened for writing: (fd, path).  The caller closes the fd
        and renames or removes the file; its name records our pid, as ``scratch_dir``'s."""
        fd, name = tempfile.mkstemp(prefix=live_prefix(prefix), dir=self.tmp_dir())
        return fd, Path(name)

    def atomic_write(self, path: Path, data: bytes, *, durable: bool = True) -> None:
        """``atomic_write`` with this store's tmp/ (see there)."""
        atomic_write(path, data, self.root, durable=durable)

    # -- blobs -------------------------------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        return is_digest(digest) and self.blob_path(digest).is_file()

    def open_blob(self, digest: str):
        """Open a blob for reading (binary).  Raises StoreError if it is missing."""
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError as e:
            raise StoreError(f"blob {digest} is missing from the store") from e

    def read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as f:
            return f.read()

    def put_blob_bytes(self, data: bytes) -> str:
        """Store bytes; returns their digest.  Idempotent."""
        digest = sha256_bytes(data)
        if not self.has_blob(digest):
            fd, tmp = self.temp_file("blob")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.blob_path(digest))
        return digest

    def put_blob_file(self, path: Path, digest: str) -> None:
        """Move an already-hashed file (under tmp/) into the store as blob ``digest``.

        The caller computed ``digest`` while writing the file (hash while streaming)."""
        target = self.blob_path(digest)
        if target.exists() and self._blob_is_whole(digest, target):
            path.unlink(missing_ok=True)
            return
        with open(path, "rb") as f:          # new, or replacing a damaged copy
            os.fsync(f.fileno())
        os.replace(path, target)
        st = os.stat(target)
        self.remember_fingerprint(digest, [st.st_size, st.st_mtime_ns, st.st_ino])

    def _blob_is_whole(self, digest: str, path: Path) -> bool:
        """True if the stored blob still has the content its name promises: its fingerprint
        is the one recorded when it was stored, or failing that it hashes right."""
        st = os.stat(path)
        if self.blob_fingerprint(digest) == [st.st_size, st.st_mtime_ns, st.st_ino]:
            return True
        return sha256_file(path)[0] == digest

    def blob_fingerprint(self, digest: str) -> list[int] | None:
        """(size, mtime_ns, inode) of a blob when the store last knew it whole, or None."""
        try:
            return json.loads(self.fingerprint_path(digest).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def remember_fingerprint(self, digest: str, fingerprint: list[int]) -> None:
        self.atomic_write(self.fingerprint_path(digest), json.dumps(fingerprint).encode(), durable=False)

    def remove_blob(self, digest: str) -> None:
        """Remove a blob and its fingerprint (nothing if it is not there).  The caller holds
        the collecting lock and knows nothing needs it."""
        self.remove_blob_entry(self.blob_path(digest))

    def remove_blob_entry(self, entry: Path) -> None:
        """Remove one entry of ``blob_entries()`` (a blob, or whatever else is there: ``check``
        repairs misnamed ones) with its fingerprint."""
        remove_entry(entry)
        self.fingerprint_of_entry(entry).unlink(missing_ok=True)

    # -- layers ------------------------------------------------------------------------------
    def has_layer(self, chain_id: str) -> bool:
        return self.layer_meta_path(chain_id).is_file()

    def layer_info(self, chain_id: str) -> LayerInfo:
        try:
            meta = json.loads(self.layer_meta_path(chain_id).read_text())
        except FileNotFoundError as e:
            raise StoreError(f"layer {chain_id} is not in the store") from e
        return LayerInfo(chain_id, meta["diff_id"], meta["parent"], meta["size"])

    def commit_layer(self, *, chain_id: str, diff_id: str, parent: str | None,
                     unpacked: Path, tar_path: Path, size: int) -> LayerInfo:
        """Commit a captured layer: its tar (already hashed to ``diff_id``) and its unpacked
        overlay-format dir.  Both sources are consumed (moved, or deleted if the layer exists)."""
        info = LayerInfo(chain_id, diff_id, parent, size)
        with self.lock():
            self.put_blob_file(tar_path, diff_id)
            if self.has_layer(chain_id):
                shutil.rmtree(unpacked, ignore_errors=True)
                return info
            scratch = self.scratch_dir("layer")
            os.rename(unpacked, scratch / LAYER_DIFF)
            (scratch / LAYER_META).write_text(json.dumps(
                {"diff_id": diff_id, "parent": parent, "size": size}, sort_keys=True))
            target = self.layer_root(chain_id)
            if target.exists():            # a half-made dir from before a crash
                shutil.rmtree(target)
            os.rename(scratch, target)
            tmp_link = self.tmp_dir() / (live_prefix("link") + "new")
            tmp_link.unlink(missing_ok=True)
            os.symlink(self.link_target(chain_id), tmp_link)
            os.replace(tmp_link, self.link_path(chain_id))
        return info

    # -- images and tags ---------------------------------------------------------------------
    def put_image(self, config_bytes: bytes, manifest_bytes: bytes) -> str:
        """Store an image's config and manifest; returns the image ID (config digest)."""
        image_id = self.put_blob_bytes(config_bytes)
        manifest_digest = self.put_blob_bytes(manifest_bytes)
        record = self.image_record_path(image_id)
        try:
            if record.read_bytes() == manifest_digest.encode():
                return image_id           # stored already (a rebuild): no write, no fsync
        except OSError:
            pass
        self.atomic_write(record, manifest_digest.encode())
        return image_id

    def put_config(self, config_bytes: bytes, diff_ids: tuple[str, ...] | list[str]) -> str:
        """Store an image whose layers are all in the store already: writes its config and an
        OCI manifest of uncompressed layers (base first); returns the image ID."""
        layers = [(d, self.layer_info(c).size) for d, c in zip(diff_ids, chain_ids(diff_ids))]
        manifest = manifest_bytes(config_digest=sha256_bytes(config_bytes),
                                  config_size=len(config_bytes), layers=layers)
        return self.put_image(config_bytes, manifest)

    def has_image(self, image_id: str) -> bool:
        return is_digest(image_id) and self.image_record_path(image_id).is_file()

    def image_config(self, image_id: str) -> bytes:
        return self.read_blob(image_id)

    def image_manifest_digest(self, image_id: str) -> str:
        """The digest of a stored image's manifest (what ``images/<id>`` holds, unchecked).
        Raises ImageNotFound."""
        try:
            return self.image_record_path(image_id).read_text().strip()
        except (FileNotFoundError, ValueError):
            raise ImageNotFound(f"no such image: {image_id}") from None

    def image_manifest(self, image_id: str) -> bytes:
        """The exact bytes of a stored image's manifest.  Raises ImageNotFound, StoreError."""
        return self.read_blob(self.image_manifest_digest(image_id))

    def tags(self) -> dict[str, str]:
        try:
            return json.loads(self.tags_path().read_text())
        except FileNotFoundError:
            return {}

    def set_tag(self, ref: str, image_id: str) -> None:
        with self.lock():
            tags = self.tags()
            if tags.get(normalize_tag(ref)) == image_id:
                return                    # already so: no write, no fsync
            tags[normalize_tag(ref)] = image_id
            self.atomic_write(self.tags_path(), json.dumps(tags, indent=1, sort_keys=True).encode())

    def remove_tag(self, ref: str) -> str:
        """Untag; returns the image ID it pointed at."""
        with self.lock():
            tags = self.tags()
            try:
                image_id = tags.pop(normalize_tag(ref))
            except KeyError:
                raise ImageNotFound(f"no such image: {ref}") from None
            self.atomic_write(self.tags_path(), json.dumps(tags, indent=1, sort_keys=True).encode())
        return image_id

    def remove_image(self, image_id: str) -> None:
        """Forget an image (its layers and blobs stay until a prune)."""
        with self.lock():
            self.image_record_path(image_id).unlink(missing_ok=True)

    def resolve(self, ref: str) -> str:
        """A tag (``name[:tag]``), a full ``sha256:`` ID or a unique ID prefix → image ID."""
        tags = self.tags()
        if normalize_tag(ref) in tags:
            return tags[normalize_tag(ref)]
        candidate = ref[7:] if ref.startswith("sha256:") else ref
        if len(candidate) >= 4 and all(c in "0123456789abcdef" for c in candidate):
            matches = [i for i in self.image_ids() if i[7:].startswith(candidate)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ImageNotFound(f"image id prefix {ref} is ambiguous")
        raise ImageNotFound(f"no such image: {ref}")


def atomic_write(path: Path, data: bytes, root: Path, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file under ``root``/tmp and a rename.  Readers see
    the old or the new content, never a mix; ``durable`` also fsyncs (tags, images), which
    caches that can be rebuilt (build cache, fingerprints) skip for speed."""
    fd, tmp = tempfile.mkstemp(dir=StoreLayout(root).tmp_dir(), prefix=live_prefix("w"))
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    """flock(2) ``path`` (created if missing) in ``mode`` for the duration of the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


def remove_entry(path: Path) -> None:
    """Remove a file, symlink or directory tree, whichever ``path`` is; nothing if it is gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
