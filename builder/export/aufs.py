"""An image's layers as an AUFS-style tree (docker's old /var/lib/docker/aufs), and back.

    DIR/diff/<id>/      each layer unpacked; a deletion is an empty file ``.wh.<name>``, an
                        opaque directory holds a ``.wh..wh..opq`` file, as AUFS keeps them
    DIR/layers/<id>     the ids of the layers below <id>, nearest first, one a line
    DIR/branches        the stack top first, ``DIR/diff/<id>=ro+wh`` (as /sys/fs/aufs/si_*/br*)
    DIR/layers.yaml     the image id and tags, and describe_layers() for every layer

``<id>`` is the layer's chain ID hex.  The AUFS spelling of whiteouts is the OCI layer-tar
spelling, so export is capture (store dir → tar) followed by a plain ``tar -x`` of that tar
(``extract_archive``: names resolved inside DIR, ``.wh.`` names kept as files), and import is
a walk of each ``diff/<id>`` writing its entries as they are, in capture's order: an
unchanged tree re-imports to the very same diffIDs.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import yaml

from builder.errors import ArchiveError, LayerError, StoreError
from builder.inspect.changes import describe_layers
from builder.layer import whiteout
from builder.layer.capture import CAPABILITY_XATTR, capture
from builder.layer.tar_writer import LayerTarWriter, TarMeta, new_tarinfo
from builder.layer.unpack import extract_archive
from builder.oci.config import History, ImageConfig, config_bytes, empty_config, now_rfc3339, parse_config
from builder.oci.digest import chain_ids, hex_of, is_digest
from builder.store.ingest import LayerOpener, store_image
from builder.store.store import Store

LAYERS_YAML = "layers.yaml"


@dataclass(frozen=True)
class ExportedLayer:
    """One layer of an exported tree: its chain ID hex (the dir name) and how it was made."""

    id: str
    created_by: str


# -- export ----------------------------------------------------------------------------------
def export_layers(store: Store, image_id: str, dest: Path) -> list[ExportedLayer]:
    """Write the AUFS-style tree of ``image_id`` to ``dest`` (missing or an empty directory).

    Returns the layers base first.  Raises ArchiveError if ``dest`` is not empty, StoreError
    if a layer is missing from the store.  On failure ``dest`` is left as far as it got.
    """

    dest = Path(dest).absolute()
    cfg = parse_config(store.image_config(image_id))
    chains = chain_ids(cfg.diff_ids)
    for chain in chains:
        if not store.has_layer(chain):
            raise StoreError(f"export-layers: layer {chain} is not in the store")
    described = json.loads(json.dumps(describe_layers(store, image_id)))   # plain JSON types
    _require_empty_dir(dest)
    scratch = store.scratch_dir("export-layers")
    try:
        (dest / "diff").mkdir()
        (dest / "layers").mkdir()
        for i, chain in enumerate(chains):
            _export_one(store, chain, dest / "diff" / hex_of(chain), scratch / "layer.tar")
            below = [hex_of(c) for c in reversed(chains[:i])]
            (dest / "layers" / hex_of(chain)).write_text("".join(f"{h}\n" for h in below))
        branches = [f"{dest / 'diff' / hex_of(c)}=ro+wh\n" for c in reversed(chains)]
        (dest / "branches").write_text("".join(branches))
        doc = {"image": image_id,
               "tags": sorted(t for t, i in store.tags().items() if i == image_id),
               "layers": described}
        (dest / LAYERS_YAML).write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    except OSError as e:
        raise ArchiveError(f"export-layers {dest}: {e.filename or ''}: {e.strerror}") from e
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [ExportedLayer(hex_of(c), d.get("created_by") or "") for c, d in zip(chains, described)]


def _require_empty_dir(dest: Path) -> None:
    try:
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            raise ArchiveError(f"export-layers: {dest} is not a directory")
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise ArchiveError(f"export-layers: {dest} is not empty")
    except OSError as e:
        raise ArchiveError(f"export-layers: create {dest}: {e.strerror}") from e


def _export_one(store: Store, chain: str, target: Path, tmp_tar: Path) -> None:
    """Store dir (overlay format) → tar (OCI whiteouts) → ``target`` (AUFS whiteouts)."""
    source = store.layer_dir(chain)
    with open(tmp_tar, "w+b") as f:
        capture(source, f)
        f.seek(0)
        target.mkdir(mode=0o755)
        extract_archive(f, target, ".")
    st = os.lstat(source)
    os.chown(target, st.st_uid, st.st_gid)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, (int(st.st_mtime), int(st.st_mtime)))


# -- import ----------------------------------------------------------------------------------
def read_layers(src: Path) -> tuple[list[ExportedLayer], str | None]:
    """The layers of an exported tree, base first, and the original image ID (None if unknown).

    From layers.yaml when it is there, else from the ``layers/<id>`` parent-chain files.
    Raises ArchiveError if neither gives one consistent stack.
    """
    yml = src / LAYERS_YAML
    if yml.is_file():
        try:
            doc = yaml.safe_load(yml.read_text())
            image = doc.get("image")
            layers = [ExportedLayer(_chain_hex(d["chain_id"]), d.get("created_by") or "")
                      for d in doc["layers"]]
        except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as e:
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            raise ArchiveError(f"import-layers: {yml} is not a layers.yaml written by "
                               f"export-layers ({reason})") from e
        return layers, image if isinstance(image, str) and is_digest(image) else None
    chains: dict[str, list[str]] = {}
    try:
        for f in sorted((src / "layers").iterdir()):
            chains[_chain_hex(f.name)] = [_chain_hex(h) for h in f.read_text().split()]
    except OSError as e:
        raise ArchiveError(f"import-layers: read {src / 'layers'}: {e.strerror} "
                           f"(and no {LAYERS_YAML})") from e
    except ValueError as e:
        raise ArchiveError(f"import-layers: {src / 'layers'}: {e}") from e
    order = sorted(chains, key=lambda h: len(chains[h]))
    for i, h in enumerate(order):
        if chains[h] != list(reversed(order[:i])):
            raise ArchiveError(f"import-layers: {src / 'layers' / h}: its parent chain does "
                               "not match the other layers/ files")
    return [ExportedLayer(h, "") for h in order], None


def _chain_hex(value: object) -> str:
    """A layers.yaml chain_id (``sha256:<hex>`` or bare hex) → the hex, the dir name."""
    text = str(value)
    text = text[7:] if text.startswith("sha256:") else text
    return hex_of("sha256:" + text)


def import_layers(store: Store, src: Path) -> str:
    """Store the tree at ``src`` (as export_layers wrote it, possibly edited) as a new image.

    Each ``diff/<id>`` becomes a layer tar as it stands (``.wh.`` files are its whiteouts);
    the config is the original image's if it is still in the store (diffIDs and created_by
    replaced), else a minimal one.  Returns the image ID; tagging is the caller's.
    """
    src = Path(src).absolute()
    layers, original_id = read_layers(src)
    if not layers:
        raise ArchiveError(f"import-layers: {src}: no layers to import")
    dirs = [src / "diff" / layer.id for layer in layers]
    for d in dirs:
        if not d.is_dir() or d.is_symlink():
            raise ArchiveError(f"import-layers: {d} is not a directory")
    scratch = store.scratch_dir("import-layers")
    try:
        tars, diff_ids = [], []
        for i, d in enumerate(dirs):
            tars.append(scratch / f"{i}.tar")
            with open(tars[-1], "wb") as out:
                diff_ids.append(tar_aufs_dir(d, out))
        original = None
        if original_id is not None and store.has_image(original_id):
            original = parse_config(store.image_config(original_id))
        cfg = _config(original, diff_ids, [layer.created_by for layer in layers])
        return store_image(store, config_bytes(cfg),
                           [(_opener(p), None) for p in tars])
    except OSError as e:
        raise ArchiveError(f"import-layers {src}: {e.filename or ''}: {e.strerror}") from e
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _config(original: ImageConfig | None, diff_ids: list[str], created_by: list[str]) -> ImageConfig:
    """The original config with new diffIDs (history kept, created_by of each layer entry
    replaced) when its layer count still matches; else fresh history on a minimal config."""
    if original is not None and sum(not h.empty_layer for h in original.history) == len(diff_ids):
        texts = iter(created_by)
        history = tuple(h if h.empty_layer else replace(h, created_by=next(texts) or h.created_by)
                        for h in original.history)
        return replace(original, diff_ids=tuple(diff_ids), history=history)
    now = now_rfc3339()
    base = original or empty_config()
    history = tuple(History(created_by=c, created=now) for c in created_by)
    return replace(base, diff_ids=tuple(diff_ids), history=history, created=now)


def tar_aufs_dir(root: Path, out: BinaryIO) -> str:
    """Write directory ``root`` (AUFS form) as a layer tar to ``out``; returns the diffID.

    Order as capture(): parents first, siblings sorted bytewise by the name they delete or
    are (``.wh.X`` sorts as ``X``), a dir's ``.wh..wh..opq`` right after the dir's header.
    Nothing is followed; other ``.wh..wh.*`` names (AUFS metadata) are skipped.
    """
    writer = LayerTarWriter(out)
    links: dict[tuple[int, int], str] = {}
    base = os.fsencode(root)
    stack = [(b"", n) for n in reversed(_children(base, b""))]
    while stack:
        parent, name = stack.pop()
        rel = os.path.join(parent, name) if parent else name
        if _tar_entry(writer, base, rel, links):
            stack.extend((rel, n) for n in reversed(_children(base, rel)))
    return writer.close()[0]


def _children(base: bytes, rel: bytes) -> list[bytes]:
    try:
        names = os.listdir(os.path.join(base, rel) if rel else base)
    except OSError as e:
        raise LayerError(f"import-layers: list {os.fsdecode(rel or b'.')}: {e.strerror}") from e
    keep = [n for n in names if not whiteout.is_whiteout_meta(os.fsdecode(n))
            and not whiteout.is_opaque_marker(os.fsdecode(n))]   # written with its dir
    prefix = os.fsencode(whiteout.WHITEOUT_PREFIX)
    return sorted(keep, key=lambda n: (n[len(prefix):], 0) if n.startswith(prefix) else (n, 1))


def _tar_entry(writer: LayerTarWriter, base: bytes, rel: bytes,
               links: dict[tuple[int, int], str]) -> bool:
    """Write the entry for ``rel``; True if it is a directory to descend into."""
    full = os.path.join(base, rel)
    path = os.fsdecode(rel)
    name = os.path.basename(path)
    try:
        st = os.lstat(full)
    except OSError as e:
        raise LayerError(f"import-layers {path}: lstat: {e.strerror}") from e
    fmt = stat.S_IFMT(st.st_mode)
    common = TarMeta(mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, mtime=int(st.st_mtime))
    if whiteout.is_whiteout_name(name):
        try:
            whiteout.whiteout_target(name)
        except ValueError as e:
            raise LayerError(f"import-layers {path}: {e}") from e
        if fmt != stat.S_IFREG:
            raise LayerError(f"import-layers {path}: a whiteout must be a regular file")
        writer.add(new_tarinfo(path, typeflag=tarfile.REGTYPE, **common))
        return False
    if whiteout.is_overlay_whiteout(st):
        raise LayerError(f"import-layers {path}: a char device 0:0 is an overlay whiteout; "
                         f"AUFS form is an empty file {whiteout.whiteout_name(name)}")
    if fmt == stat.S_IFSOCK:
        return False
    if fmt != stat.S_IFDIR and st.st_nlink > 1:
        first = links.setdefault((st.st_dev, st.st_ino), path)
        if first != path:
            writer.add(new_tarinfo(path, typeflag=tarfile.LNKTYPE, linkname=first, **common))
            return False
    if fmt == stat.S_IFDIR:
        writer.add(_with_capability(new_tarinfo(path, typeflag=tarfile.DIRTYPE, **common), full))
        marker = os.path.join(full, os.fsencode(whiteout.OPAQUE_MARKER))
        try:
            mst = os.lstat(marker)
        except FileNotFoundError:
            return True
        if not stat.S_ISREG(mst.st_mode):
            raise LayerError(f"import-layers {path}/{whiteout.OPAQUE_MARKER}: not a regular file")
        writer.add(new_tarinfo(f"{path}/{whiteout.OPAQUE_MARKER}", typeflag=tarfile.REGTYPE,
                               mode=stat.S_IMODE(mst.st_mode), uid=mst.st_uid, gid=mst.st_gid,
                               mtime=int(mst.st_mtime)))
        return True
    if fmt == stat.S_IFREG:
        info = _with_capability(new_tarinfo(path, typeflag=tarfile.REGTYPE, size=st.st_size,
                                            **common), full)
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                writer.add(info, f)
        except OSError as e:
            raise LayerError(f"import-layers {path}: read: {e.strerror}") from e
        return False
    if fmt == stat.S_IFLNK:
        target = os.fsdecode(os.readlink(full))
        writer.add(new_tarinfo(path, typeflag=tarfile.SYMTYPE, linkname=target, **common))
        return False
    kinds = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE, stat.S_IFIFO: tarfile.FIFOTYPE}
    if fmt not in kinds:
        raise LayerError(f"import-layers {path}: unsupported file type {oct(fmt)}")
    major, minor = (0, 0) if fmt == stat.S_IFIFO else (os.major(st.st_rdev), os.minor(st.st_rdev))
    writer.add(new_tarinfo(path, typeflag=kinds[fmt], devmajor=major, devminor=minor, **common))
    return False


def _with_capability(info: tarfile.TarInfo, full: bytes) -> tarfile.TarInfo:
    try:
        value = os.getxattr(full, CAPABILITY_XATTR, follow_symlinks=False)
    except OSError:
        return info
    info.pax_headers = {**info.pax_headers,
                        "SCHILY.xattr." + CAPABILITY_XATTR: value.decode("utf-8", "surrogateescape")}
    return info


def _opener(path: Path) -> LayerOpener:
    """Opens ``path`` for reading, for store_image."""
    return lambda: open(path, "rb")
