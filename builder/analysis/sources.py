"""Where an image to analyse comes from, and its layers read as streams of entries.

    webapp, sha256:…          the store (a tag or an image ID)
    docker-archive:PATH       a `docker save` tar (manifest.json; old or new layout)
    oci-archive:PATH          a tar holding an OCI image layout
    oci:DIR                   an OCI image layout directory
    docker://REF              a registry: the layers are streamed, never stored

``open_image`` (a context manager: archives stay open while it is used) gives an ``Image``: the
config and one ``LayerRef`` per layer, base first.  ``read_layers`` streams each layer once,
front to back, through ``entries.read_entries`` (a layer listed twice, as containerd lists the
empty layer, is read once and used twice).  Blobs whose name is their digest (OCI layouts,
docker >= 25 archives, registries) are verified as they stream: the bytes the tar reader left
unread are drained and the sha256 and size compared at the end.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from builder.analysis.entries import Entry, read_entries
from builder.errors import ArchiveError, ManifestError, PybuildError, RegistryError, UsageError
from builder.export.archive import ArchiveReader, MemberReader, read_archive
from builder.oci.config import ImageConfig, host_architecture, parse_config
from builder.oci.digest import HashingReader, hex_of, sha256_bytes
from builder.oci.manifest import INDEX_TYPES, MANIFEST_TYPES, Descriptor, Index, Manifest
from builder.store.store import Store

#: The transports of other tools that pybuild cannot read, named so that a typo of ours or
#: one of theirs gets "unknown source" rather than "no such image".
OTHER_TRANSPORTS = ("docker-daemon", "containers-storage", "dir", "podman", "ostree", "sif", "tarball")
KINDS = ("docker-archive", "oci-archive", "oci", "docker")
_BLOB = re.compile(r"^(?:\./)?blobs/sha256/([0-9a-f]{64})$")

#: Opens a layer blob; the context manager verifies the blob when the block ends normally.
Opener = Callable[[], contextlib.AbstractContextManager[BinaryIO]]


@dataclass(frozen=True)
class Source:
    """A parsed IMAGE argument: ``kind`` is "store" or one of KINDS; ``where`` the rest."""

    kind: str
    where: str

    def __str__(self) -> str:
        return self.where if self.kind == "store" else f"{self.kind}:{self.where}" \
            if self.kind != "docker" else f"docker://{self.where}"


def parse_source(text: str) -> Source:
    """``docker-archive:img.tar`` → Source("docker-archive", "img.tar"); ``webapp`` → a store
    ref.  Raises UsageError for an empty path or an unknown transport (``foo://x``,
    ``docker-daemon:x``)."""
    if text.startswith("docker://"):
        kind, where = "docker", text[len("docker://"):]
    elif "://" in text:
        raise UsageError(f"unknown image source {text!r}: the sources are a store tag or ID, "
                         f"{', '.join(k + ':' for k in KINDS[:3])}PATH and docker://REF")
    else:
        prefix, sep, rest = text.partition(":")
        if sep and prefix in KINDS[:3]:
            kind, where = prefix, rest
        elif sep and prefix in OTHER_TRANSPORTS:
            raise UsageError(f"unknown image source {prefix}: (pybuild reads the store, "
                             f"docker-archive:, oci-archive:, oci: and docker://)")
        else:
            kind, where = "store", text
    if not where:
        raise UsageError(f"image source {text!r} names nothing")
    return Source(kind, where)


@dataclass(frozen=True)
class LayerRef:
    """One layer of an image: dive's layer ``id`` (the first path component of its member in
    a docker-archive, else its blob digest's hex), the blob ``digest`` when known, how to open
    it, and a ``label`` for errors."""

    id: str
    digest: str | None
    open: Opener
    label: str
    key: str                    # equal keys: the same blob (read once)


@dataclass(frozen=True)
class Image:
    source: Source
    config: ImageConfig
    layers: tuple[LayerRef, ...]
    image_id: str | None = None             # the store's image ID, when read from the store


def read_layers(image: Image, *, on_layer: Callable[[int], None] | None = None) -> list[list[Entry]]:
    """The entries of every layer, base first; each distinct blob is streamed once."""
    seen: dict[str, list[Entry]] = {}
    out: list[list[Entry]] = []
    for i, layer in enumerate(image.layers):
        if layer.key not in seen:
            with layer.open() as stream:
                seen[layer.key] = read_entries(stream, label=layer.label)
        out.append(seen[layer.key])
        if on_layer:
            on_layer(i)
    return out


@contextlib.contextmanager
def open_image(source: Source, *, store: Callable[[], Store]) -> Iterator[Image]:
    """The image ``source`` names.  ``store`` makes the Store (only the store and docker://,
    for its credentials, need one).  Raises ImageNotFound, ArchiveError, RegistryError or
    UsageError with one line saying what is wrong."""
    match source.kind:
        case "store":
            yield _from_store(store(), source)
        case "docker-archive" | "oci-archive":
            path = Path(source.where)
            if not path.is_file():
                raise ArchiveError(f"{source}: no such file")
            with contextlib.ExitStack() as stack:
                try:
                    reader = stack.enter_context(read_archive(path))
                except ArchiveError as e:
                    first = str(e).splitlines()[0].rstrip(":")
                    raise ArchiveError(f"{source}: not a readable tar archive ({first})") from e
                yield _from_docker_archive(reader, source) if source.kind == "docker-archive" \
                    else _from_layout(reader, source)
        case "oci":
            path = Path(source.where)
            if not path.is_dir():
                raise ArchiveError(f"{source}: no such directory")
            yield _from_layout(DirReader(path), source)
        case "docker":
            yield _from_registry(store, source)
        case _:
            raise UsageError(f"internal error: unknown source kind {source.kind}")


# -- the store -------------------------------------------------------------------------------
def _from_store(store: Store, source: Source) -> Image:
    image_id = store.resolve(source.where)
    config = parse_config(store.image_config(image_id))
    try:
        manifest = Manifest.parse(store.image_manifest(image_id))
    except ManifestError as e:
        raise ArchiveError(f"{source}: the stored manifest: {e}") from e

    def opener(digest: str) -> Opener:
        return lambda: contextlib.closing(store.open_blob(digest))   # the store's blobs are trusted
    layers = tuple(LayerRef(hex_of(d.digest), d.digest, opener(d.digest), f"{source} layer {i}", d.digest)
                   for i, d in enumerate(manifest.layers))
    return Image(source, config, layers, image_id)


# -- archives and layouts --------------------------------------------------------------------
class DirReader(MemberReader):
    """An OCI layout directory read like an archive (``ArchiveReader``'s read side)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _file(self, name: str) -> Path:
        if name.startswith("/") or ".." in name.split("/"):
            raise ArchiveError(f"{self.path}: unsafe path {name!r}")
        return self.path / name

    def has(self, name: str) -> bool:
        return self._file(name).is_file()

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        try:
            f = open(self._file(name), "rb")
        except OSError as e:
            raise ArchiveError(f"{self.path}: read {name}: {e.strerror}") from e
        with f:
            yield f


Reader = ArchiveReader | DirReader


def _from_docker_archive(reader: ArchiveReader, source: Source) -> Image:
    if not reader.has("manifest.json"):
        hint = " (it is an OCI layout: use oci-archive:)" if reader.has("index.json") else ""
        raise ArchiveError(f"{source}: not a docker-archive: no manifest.json in it{hint}")
    items = reader.read_json("manifest.json")
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise ArchiveError(f"{source}: manifest.json lists no image")
    item = items[0]                                 # dive reads the first image, as we do
    config_path, paths = item.get("Config"), item.get("Layers")
    if not isinstance(config_path, str) or not isinstance(paths, list) \
            or not all(isinstance(p, str) for p in paths):
        raise ArchiveError(f"{source}: manifest.json: the first image has no Config or Layers")
    config = _config(reader.read(config_path), source)
    layers = []
    for i, p in enumerate(paths):
        reader.member(p)                            # fails now, naming the member, if it is absent
        m = _BLOB.match(p)
        digest = f"sha256:{m.group(1)}" if m else None
        layers.append(LayerRef(p.lstrip("./").split("/")[0], digest, _archive_opener(reader, p, digest),
                               f"{source} layer {i} ({p})", p))
    return Image(source, config, tuple(layers))


def _from_layout(reader: Reader, source: Source) -> Image:
    if not reader.has("index.json"):
        hint = " (it is a docker-archive: use docker-archive:)" if reader.has("manifest.json") else ""
        raise ArchiveError(f"{source}: not an OCI layout: no index.json in it{hint}")
    desc = _pick(reader, _index(reader.read_json("index.json"), source, "index.json"), source, depth=0)
    try:
        manifest = Manifest.parse(_blob(reader, desc, source))
    except ManifestError as e:
        raise ArchiveError(f"{source}: manifest {desc.digest}: {e}") from e
    config = _config(_blob(reader, manifest.config, source), source)
    layers = tuple(LayerRef(hex_of(d.digest), d.digest, _archive_opener(reader, _name(d), d.digest),
                            f"{source} layer {i} ({d.digest})", d.digest)
                   for i, d in enumerate(manifest.layers))
    return Image(source, config, layers)


def _pick(reader: Reader, index: Index, source: Source, *, depth: int) -> Descriptor:
    """The image manifest of an index: the only one, or the host platform's (nested indexes
    are followed), or else the first."""
    if not index.manifests:
        raise ArchiveError(f"{source}: the index lists no image")
    desc = index.manifests[0] if len(index.manifests) == 1 else \
        index.for_platform("linux", host_architecture()) or index.manifests[0]
    if desc.media_type in INDEX_TYPES:
        if depth > 4:
            raise ArchiveError(f"{source}: indexes nested too deeply")
        return _pick(reader, _index(_blob(reader, desc, source), source, desc.digest), source, depth=depth + 1)
    if desc.media_type not in (*MANIFEST_TYPES, None):
        raise ArchiveError(f"{source}: unsupported manifest type {desc.media_type}")
    return desc


def _index(data: Any, source: Source, what: str) -> Index:
    try:
        return Index.parse(data)
    except ManifestError as e:
        raise ArchiveError(f"{source}: {what}: {e}") from e


def _name(desc: Descriptor) -> str:
    return f"blobs/sha256/{hex_of(desc.digest)}"


def _blob(reader: Reader, desc: Descriptor, source: Source) -> bytes:
    data = reader.read(_name(desc))
    got = sha256_bytes(data)
    if got != desc.digest:
        raise ArchiveError(f"{source}: blob {desc.digest} has digest {got}")
    return data


def _config(data: bytes, source: Source) -> ImageConfig:
    try:
        return parse_config(data)
    except ArchiveError as e:
        raise ArchiveError(f"{source}: {e}") from e


def _archive_opener(reader: Reader, name: str, digest: str | None) -> Opener:
    @contextlib.contextmanager
    def opener() -> Iterator[BinaryIO]:
        with reader.open(name) as f:
            checked = Verifying(f, digest, None, f"{reader.path}: {name}")
            yield checked                            # type: ignore[misc]
            checked.finish(ArchiveError)
    return opener


class Verifying(HashingReader):
    """A reader that hashes what passes through it; ``finish`` reads the rest and checks the
    sha256 (and size) against ``digest`` (nothing to check when it is None)."""

    def __init__(self, src: Any, digest: str | None, size: int | None, what: str) -> None:
        super().__init__(src)
        self._expected, self._expected_size, self._what = digest, size, what

    def finish(self, error: type[PybuildError]) -> None:
        if self._expected is None:
            return
        self.drain()
        got = self.digest
        if got != self._expected or (self._expected_size is not None and self.size != self._expected_size):
            raise error(f"{self._what}: content does not match its digest {self._expected} "
                        f"(got {got}, {self.size} bytes); refused")


# -- a registry --------------------------------------------------------------------------------
def _from_registry(store: Callable[[], Store], source: Source) -> Image:
    # start-up: the registry client (requests) only for docker:// sources
    from builder.registry.client import open_client, pull_scope
    from builder.registry.pull import choose_platform, read_index, read_manifest
    from builder.registry.reference import parse_reference
    try:
        ref = parse_reference(source.where)
    except PybuildError as e:
        raise UsageError(f"{source}: {e}") from e
    client = open_client(_maybe_store(store), ref)
    body, media, _ = client.get_manifest(ref.path, ref.reference)
    for _ in range(5):
        if media not in INDEX_TYPES:
            break
        body, media, _ = client.get_manifest(ref.path, choose_platform(read_index(body, ref), ref).digest)
    else:
        raise RegistryError(f"{ref.full}: indexes nested too deeply")
    manifest = read_manifest(body, ref)
    config_bytes = client.get_blob_bytes(ref.path, manifest.config.digest, manifest.config.size)
    try:
        config = parse_config(config_bytes)
    except ArchiveError as e:
        raise RegistryError(f"{ref.full}: {e}") from e

    def opener(d: Descriptor) -> Opener:
        @contextlib.contextmanager
        def open_blob() -> Iterator[BinaryIO]:
            what = f"get blob {d.digest} from {ref.domain}/{ref.path}"
            resp = client.request("GET", f"/v2/{ref.path}/blobs/{d.digest}", scopes=(pull_scope(ref.path),),
                                  what=what, stream=True)
            with resp:
                resp.raw.decode_content = False         # the blob's own bytes, compressed or not
                checked = Verifying(resp.raw, d.digest, d.size, what)
                yield checked                           # type: ignore[misc]
                checked.finish(RegistryError)
        return open_blob
    layers = tuple(LayerRef(hex_of(d.digest), d.digest, opener(d), f"{ref.full} layer {i} ({d.digest})",
                            d.digest) for i, d in enumerate(manifest.layers))
    return Image(source, config, layers)


def _maybe_store(store: Callable[[], Store]) -> Store | None:
    """The store for its credentials, if one can be opened (a registry needs no store)."""
    try:
        return store()
    except PybuildError:
        return None
