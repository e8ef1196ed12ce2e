"""What an ADD/COPY step copies, read from where its sources live: the build context (minus
.dockerignore), heredocs (written to the scratch dir), URLs (downloaded) or another image's
root (``--from``).  The effects of a CopyStep before its layer is made: the result is a
``CopyJob``, the function the step's helper runs on the merged root and the inputs that decide
the result beyond the description itself (the sources' content checksum, the source image)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.build.state import BuildOptions, StepRef
from builder.build.steps import CopySource, CopyStep
from builder.context import dockerignore
from builder.context.checksum import checksum, item_checksums
from builder.context.dockerignore import PatternMatcher
from builder.context.item import CopyOptions, Item
from builder.context.sources import BuildContext, Source, apply_exclude, is_url, parents_pattern, parents_subdir
from builder.errors import ContextError, PybuildError
from builder.store.filehashes import FileHashes
from builder.store.store import Store

if TYPE_CHECKING:
    from builder.layer.overlay import OverlayMount


@dataclass(frozen=True)
class CopyJob:
    """A CopyStep made concrete: ``fn(merged_root, *args)`` copies; ``inputs`` goes into the
    cache key beside the description."""

    created_by: str
    inputs: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    files: dict[str, str] = field(default_factory=dict)   # source path → digest (why a step missed)
    leaves_files: bool = False     # ``fn`` takes ``upper=`` and may leave files to write there


class SourceReader:
    """Reads the sources of this build's ADD/COPY steps.  ``image_of(ref)`` resolves a
    ``--from`` value to an image ID (an earlier stage or a stored image); ``scratch()`` is the
    build's scratch dir."""

    def __init__(self, store: Store, options: BuildOptions, hashes: FileHashes, *,
                 image_of: Callable[[str], str], scratch: Callable[[], Path]) -> None:
        self.store = store
        self.options = options
        self.hashes = hashes
        self.image_of = image_of
        self.scratch = scratch

    def job(self, step: CopyStep, ref: StepRef) -> CopyJob:
        exclude = PatternMatcher.parse(list(step.flags.exclude)) or None
        options = CopyOptions(chown=step.flags.chown, chmod=step.flags.chmod,
                              preserve_owner=step.flags.from_ is not None)
        if step.flags.from_ is not None:
            return self._from_image(step, ref, options, exclude)
        context = BuildContext(self.options.context,
                               ignore=dockerignore.load(self.options.buildfile, self.options.context))
        items: list[Item] = []
        for source in step.sources:
            if source.heredoc is not None:
                items.append(self._heredoc(source))
            elif is_url(source.word):
                # start-up: only an ADD of a URL downloads
                from builder.context.download import download
                items.append(download(source.word, self.scratch(), step.flags.checksum))
            elif step.flags.parents:
                pattern, base = parents_pattern(source.word)
                try:
                    matches = context.resolve(pattern)
                except ContextError:
                    continue                      # BuildKit: with --parents a missing source is skipped
                for found in apply_exclude(matches, exclude):
                    items.append(Item(source=found, subdir=parents_subdir(found, base)))
            else:
                for found in apply_exclude(context.resolve(source.word), exclude):
                    items.append(Item(source=found, extract=step.keyword == "ADD" and _is_archive(found)))
        if not items and not step.flags.parents:
            raise ref.error("no source files were specified (all excluded)")
        if len(items) > 1 and not step.dest.endswith("/") and not step.flags.parents:
            raise ref.error(f"When using {step.keyword} with more than one source file, "
                            "the destination must be a directory and end with a /")
        if not items:
            return CopyJob(step.created_by(checksum([], self.hashes.sha256)), "none", run_copy, ("nothing",))
        files: dict[str, str] = {}
        summed, inputs = item_checksums(items, self.hashes.sha256, files)
        inputs += "".join(f" extract={i.extract} mode={i.mode} mtime={i.mtime} subdir={i.subdir}" for i in items)
        return CopyJob(step.created_by(summed), inputs, run_copy, ("context", items, step.target, options), files,
                       leaves_files=True)

    def _heredoc(self, source: CopySource) -> Item:
        """A heredoc source: a file named like the delimiter, mode 0644, mtime 0."""
        assert source.heredoc is not None
        path = self.scratch() / f"heredoc-{os.urandom(6).hex()}" / source.heredoc
        path.parent.mkdir()
        path.write_bytes(source.content.encode("utf-8", "surrogateescape"))
        os.chmod(path, 0o644)
        os.utime(path, (0, 0))
        found = Source(path=path, name=source.heredoc, rel=f"<<{source.heredoc}", is_dir=False)
        return Item(source=found, mode=0o644, mtime=0)

    def _from_image(self, step: CopyStep, ref: StepRef, options: CopyOptions,
                    exclude: PatternMatcher | None) -> CopyJob:
        """COPY --from: sources from another image's union (checksummed in a first helper)."""
        # start-up: only COPY --from mounts another image
        from builder.runtime.mount import image_overlay
        value = step.flags.from_
        assert value is not None
        try:
            image_id = self.image_of(value)
        except PybuildError as e:
            raise ref.error(f"--from={value}: {e}") from None
        mount_dir = self.scratch() / f"from-{os.urandom(4).hex()}"
        mount_dir.mkdir()
        try:
            image = image_overlay(self.store, image_id, str(mount_dir))
        except PybuildError as e:
            raise ref.error(f"--from={value}: {e}") from None
        words = [s.word for s in step.sources]
        sums, count = self._from_checksum(image, image_id, words, exclude, step.flags.parents)
        if count > 1 and not step.dest.endswith("/") and not step.flags.parents:
            raise ref.error(f"When using {step.keyword} with more than one source file, "
                            "the destination must be a directory and end with a /")
        return CopyJob(step.created_by(sums), f"from={image_id}", run_copy,
                       ("image", image, words, step.target, options, exclude, step.flags.parents))

    def _from_checksum(self, image: OverlayMount, image_id: str, words: list[str],
                       exclude: PatternMatcher | None, parents: bool) -> tuple[str, int]:
        """(checksum, number of sources) of COPY --from's sources.  An image's content never
        changes under its ID, so the answer is remembered in the store: a warm build does not
        mount and walk the source image again."""
        patterns = [("!" if p.exclusion else "") + p.text for p in exclude.patterns] if exclude else []
        key = hashlib.sha256(json.dumps([image_id, words, patterns, parents]).encode(
            "utf-8", "surrogateescape")).hexdigest()
        memo = self.store.memo_path("copyfrom", key)
        try:
            sums, count = json.loads(memo.read_text())
            return sums, count
        except (FileNotFoundError, ValueError):
            pass
        # start-up: only a COPY --from whose sources' checksum is not remembered yet
        from builder.context import fromimage
        from builder.layer import sandbox
        sums, count = sandbox.call_in_root(image, fromimage.source_checksum, words, exclude, parents)
        self.store.atomic_write(memo, json.dumps([sums, count]).encode(), durable=False)
        return sums, count


def run_copy(merged: Path, kind: str, *args: Any, upper: Path | None = None) -> Any:
    """In the step's helper: copy ``kind`` "context" (context/copy.py), "image" (COPY --from,
    context/fromimage.py) or "nothing" (COPY --parents whose sources all were missing).
    Returns what a context copy left to write into ``upper`` (``copy_items``), or None."""
    if kind == "context":
        # start-up: the copying code only where a copy runs
        from builder.context.copy import copy_items
        return copy_items(merged, *args, upper=upper)
    if kind == "image":
        # start-up: the copying code only where a copy runs
        from builder.context.fromimage import copy_from_image
        copy_from_image(merged, *args)
    return None


def _is_archive(source: Source) -> bool:
    if source.is_dir:
        return False
    # start-up: only ADD of a file looks inside it
    from builder.context.archive import is_archive
    return is_archive(source)
