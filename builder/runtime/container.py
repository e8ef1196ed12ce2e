"""Containers: an image's read-only layers plus one writable layer (the article's picture).

``pybuild run --keep NAME IMAGE CMD`` keeps the writable layer at
``<store>/containers/<NAME>/upper`` (an overlay upper dir: whiteouts as 0:0 char devices,
opaque dirs by xattr), so that ``pybuild diff NAME`` shows and ``pybuild commit NAME IMAGE``
keeps what the command created, changed and deleted.  Without ``--keep`` the writable layer
lives in the store's scratch area and is gone when the command ends.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ContainerNotFound, PybuildError, StoreError
from builder.layer import sandbox
from builder.layer.capture import capture
from builder.layer.overlay import OverlayMount
from builder.layer.stack import LayerStack
from builder.oci import config as img
from builder.oci.digest import EMPTY_LAYER_DIFF_ID, chain_ids
from builder.store.ingest import store_layer_from_tar
from builder.store.layout import CONTAINER_META
from builder.store.store import Store

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Container:
    name: str
    image_id: str
    command: tuple[str, ...]
    created: str
    path: Path                      # holds upper/, work/ and meta.json

    @property
    def upper(self) -> Path:
        return self.path / "upper"


def command_for(cfg: img.ImageConfig, args: list[str]) -> tuple[str, ...]:
    """What docker runs: Entrypoint + (args, or the image's Cmd when none are given)."""
    rc = cfg.config
    command = tuple(rc.entrypoint or ()) + (tuple(args) if args else tuple(rc.cmd or ()))
    if not command:
        raise PybuildError("no command specified: the image has no CMD or ENTRYPOINT; give one")
    return command


def create(store: Store, image_ref: str, args: list[str], *, name: str | None) -> Container:
    """A new container of ``image_ref``: kept under containers/NAME when ``name`` is given,
    else in a scratch dir that the caller removes (``discard``)."""
    image_id = store.resolve(image_ref)
    command = command_for(img.parse_config(store.image_config(image_id)), args)
    if name is None:
        path = store.scratch_dir("container")
    else:
        if not _NAME.match(name):
            raise PybuildError(f"invalid container name {name!r}: use letters, digits, '_', '.', '-'")
        path = store.container_dir(name)
        path.parent.mkdir(exist_ok=True)
        try:
            path.mkdir()
        except FileExistsError:
            raise PybuildError(f"a container named {name} already exists (pybuild rm {name})") from None
    for sub in ("upper", "work", "merged"):
        (path / sub).mkdir()
    container = Container(name or path.name, image_id, command, img.now_rfc3339(), path)
    (path / CONTAINER_META).write_text(json.dumps({"image": image_id, "command": list(command),
                                                   "created": container.created}))
    return container


def get(store: Store, name: str) -> Container:
    try:
        meta = json.loads(store.container_meta_path(name).read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        raise ContainerNotFound(f"no such container: {name}") from None
    return Container(name, meta["image"], tuple(meta["command"]), meta["created"], store.container_dir(name))


def names(store: Store) -> list[str]:
    """The kept containers, sorted."""
    return store.container_names()


def remove(store: Store, name: str) -> None:
    shutil.rmtree(get(store, name).path)


def run(store: Store, container: Container) -> int:
    """Run the container's command with pybuild's own stdio; returns its exit status."""
    cfg = img.parse_config(store.image_config(container.image_id))
    chains = chain_ids(cfg.diff_ids)
    scratch = store.scratch_dir("run")
    try:
        stack = LayerStack(tuple(store.layer_dir(c) for c in reversed(chains)))
        sandbox.make_init_layer(scratch / "init", stack, sandbox.host_files())
        lowers = (os.path.relpath(scratch / "init", store.root),) + \
            tuple(store.short_layer_path(c) for c in reversed(chains))
        rel = os.path.relpath(container.path, store.root)
        mount = OverlayMount(lowers=lowers, upper=f"{rel}/upper", work=f"{rel}/work",
                             target=str(container.path / "merged"), cwd=str(store.root))
        rc = cfg.config
        hostname = secrets.token_hex(6)
        env = rc.env if rc.env_get("HOSTNAME") is not None else rc.env + (f"HOSTNAME={hostname}",)
        spec = sandbox.RunSpec(argv=container.command, env=env, workdir=rc.working_dir or "/",
                               user=rc.user, hostname=hostname)
        return sandbox.run(mount, spec, None, files_dir=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def commit(store: Store, container: Container, ref: str | None, *, message: str = "") -> str:
    """A new image: the container's image plus its writable layer (nothing if unchanged)."""
    cfg = img.parse_config(store.image_config(container.image_id))
    chains = chain_ids(cfg.diff_ids)
    for chain in chains:
        if not store.has_layer(chain):
            raise StoreError(f"layer {chain} of {container.image_id} is missing from the store")
    scratch = store.scratch_dir("commit")
    try:
        tar = scratch / "layer.tar"
        with open(tar, "wb") as out:
            cap = capture(container.upper, out)
        history = img.History(created_by=" ".join(container.command), created=img.now_rfc3339(),
                              comment=message)
        if cap.diff_id == EMPTY_LAYER_DIFF_ID:
            cfg = cfg.with_history(img.History(history.created_by, history.created, True, message))
        else:
            with open(tar, "rb") as f:
                store_layer_from_tar(store, f, parent_chain=chains[-1] if chains else None,
                                     expected_diff_id=cap.diff_id)
            cfg = cfg.with_layer(cap.diff_id, history)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    image_id = store.put_config(img.config_bytes(cfg), cfg.diff_ids)
    if ref:
        store.set_tag(ref, image_id)
    return image_id
