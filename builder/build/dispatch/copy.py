"""ADD and COPY: sources from the build context (or a URL, for ADD; another image's root for
``COPY --from``; a heredoc) into the root filesystem.

Flags (values expanded with the build env, like the other arguments):
``--chown=user[:group]`` (resolved in the destination rootfs, see copyowner), ``--chmod=0755``
(BuildKit; octal), ``--exclude=PATTERN`` (BuildKit; repeatable, docker pattern syntax),
``--link`` (BuildKit; accepted and otherwise a no-op: pybuild always writes the copy into the
step's own upper dir, so the layer already holds only what the copy wrote — the one
difference, that BuildKit's ``--link`` does not follow symlinks in the existing dest path, is
not reproduced: pybuild resolves the dest as the classic builder does), ``ADD --checksum=
sha256:<hex>`` (one URL source; the download must hash to it), ``COPY --from=``.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from builder.build.session import Build, State, StepRef
from builder.buildfile.instructions import Add, Copy, Heredoc
from builder.store.cache import sources_checksum
from builder.context.sources import BuildContext, Source, is_url, walk
from builder.build.dispatch.common import env_of, expand, nop1
from builder.context.dockerignore import PatternMatcher
from builder.errors import ContextError, PybuildError, StepError

if TYPE_CHECKING:       # filecopy pulls in layer machinery: imported where a step runs
    from builder.context.copy import CopyOptions, Item

UNSUPPORTED = ("keep-git-dir", "parents")
_CHECKSUM = re.compile(r"sha256:([0-9a-f]{64})\Z")
_VAR = re.compile(r"\\\$|\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)")


Fail = Callable[[str], StepError]


def dispatch_copy(build: Build, state: State, inst: Add | Copy, step: StepRef) -> State:
    from builder.context import copy as filecopy, fromimage as copyfrom

    def fail(reason: str) -> StepError:
        return StepError(step=step.number, total=step.total, instruction=step.original, reason=reason)

    env = env_of(state)
    flags: dict[str, list[str | None]] = {}
    for flag in inst.flags:
        value = None if flag.value is None else expand(build, flag.value, env)
        flags.setdefault(flag.name, []).append(value)
    for name in UNSUPPORTED:
        if name in flags:
            raise fail(f"--{name} is not supported by pybuild yet")
    chown = (flags.get("chown") or [None])[0] or None
    try:
        chmod_value = (flags.get("chmod") or [None])[0]
        chmod = None if chmod_value is None else filecopy.parse_chmod(chmod_value)
        exclude = PatternMatcher.parse([v or "" for v in flags.get("exclude", [])]) or None
    except ContextError as e:
        raise fail(str(e)) from None
    is_add = isinstance(inst, Add)
    from_ref = (flags.get("from") or [None])[0]
    heredocs = {h.name: h for h in inst.heredocs}
    srcs_raw = list(inst.sources)
    srcs = [w if _heredoc_name(w) in heredocs else expand(build, w, env) for w in srcs_raw]
    dest = expand(build, inst.dest, env)
    want_sha = _checksum_flag(flags, srcs, fail)

    workdir = state.config.config.working_dir or "/"
    target = dest if dest.startswith("/") else posixpath.join(workdir, dest)
    if dest.endswith("/") and not target.endswith("/"):
        target += "/"
    options = filecopy.CopyOptions(chown=chown, chmod=chmod, preserve_owner=from_ref is not None)
    shown = f"--chown={chown} " if chown else ""
    excluded = [("!" if p.exclusion else "") + p.text for p in exclude.patterns] if exclude else []
    settings = f"\nchown={chown!r} chmod={chmod!r} exclude={excluded!r}"    # part of the cache key

    if from_ref is not None:
        return _copy_from(build, state, inst, from_ref, srcs, dest, target, options, exclude,
                          shown, settings, fail)

    context = BuildContext(build.options.context, ignore=_ignore_rules(build))
    items: list[filecopy.Item] = []
    for raw, src in zip(srcs_raw, srcs):
        name = _heredoc_name(raw)
        if name in heredocs:
            items.append(_heredoc_item(build, heredocs[name], env))
            continue
        if is_url(src):
            if not is_add:
                raise fail(f"source can't be a URL for COPY: {src}")
            items.append(filecopy.download(src, build.scratch_path(), want_sha))
            continue
        for source in copyfrom.apply_exclude(context.resolve(src), exclude):
            items.append(filecopy.Item(source=source, extract=is_add and filecopy.is_archive(source)))
    if not items:
        raise fail("no source files were specified (all excluded)")
    if len(items) > 1 and not dest.endswith("/"):
        raise fail(f"When using {inst.keyword} with more than one source file, "
                   "the destination must be a directory and end with a /")
    created_by = nop1(state, f"{inst.keyword} {shown}{filecopy.checksum(items, build.hashes.sha256)} in {dest} ")
    sources = [i.source for i in items]
    inputs = sources_checksum([(s.rel, s.path) for s in sources], build.hashes,
                              walk=lambda n: walk(sources[n]), flags=settings) + \
        "".join(f" extract={i.extract} mode={i.mode} mtime={i.mtime}" for i in items)
    return build.change_root(state, created_by, filecopy.copy_items, items, target, options,
                             inputs=inputs)


def _copy_from(build: Build, state: State, inst: Add | Copy, ref: str, srcs: list[str], dest: str,
               target: str, options: CopyOptions, exclude: PatternMatcher | None, shown: str,
               settings: str, fail: Fail) -> State:
    """COPY --from: sources from another image's union (checksummed in a first helper)."""
    from builder.context import fromimage as copyfrom
    from builder.runtime.mount import image_overlay
    try:
        finder = getattr(build, "image_for_copy_from", None)
        image_id = finder(ref) if finder is not None else build.store.resolve(ref)
    except PybuildError as e:
        raise fail(f"--from={ref}: {e}") from None
    mount_dir = build.scratch_path() / f"from-{os.urandom(4).hex()}"
    mount_dir.mkdir()
    try:
        image = image_overlay(build.store, image_id, str(mount_dir))
    except PybuildError as e:
        raise fail(f"--from={ref}: {e}") from None
    sums, count = _from_checksum(build, image, image_id, srcs, exclude, settings)
    if count > 1 and not dest.endswith("/"):
        raise fail(f"When using {inst.keyword} with more than one source file, "
                   "the destination must be a directory and end with a /")
    created_by = nop1(state, f"{inst.keyword} {shown}{sums} in {dest} ")
    inputs = f"from={image_id} srcs={srcs!r}" + settings
    return build.change_root(state, created_by, copyfrom.copy_from_image, image, srcs, target,
                             options, exclude, inputs=inputs)


def _from_checksum(build: Build, image, image_id: str, srcs: list[str], exclude: PatternMatcher | None,
                   settings: str) -> tuple[str, int]:
    """(checksum, number of sources) of COPY --from's sources.  An image's content never
    changes under its ID, so the answer is remembered in the store: a warm build does not
    mount and walk the source image again."""
    import hashlib
    import json

    from builder.context import fromimage as copyfrom
    from builder.layer import sandbox
    from builder.store.store import atomic_write
    key = hashlib.sha256(f"{image_id}\n{srcs!r}\n{settings}".encode("utf-8", "surrogateescape")).hexdigest()
    memo = build.store.root / "cache" / f".copyfrom-{key}"
    try:
        sums, count = json.loads(memo.read_text())
        return sums, count
    except (FileNotFoundError, ValueError):
        pass
    sums, count = sandbox.call_in_root(image, copyfrom.source_checksum, srcs, exclude)
    atomic_write(memo, json.dumps([sums, count]).encode(), build.store.root, durable=False)
    return sums, count


def _checksum_flag(flags: dict[str, list[str | None]], srcs: list[str], fail: Fail) -> str | None:
    """ADD --checksum=sha256:<hex>: the hex, after checking it may be used here."""
    values = flags.get("checksum")
    if not values:
        return None
    match = _CHECKSUM.match(values[0] or "")
    if match is None:
        raise fail(f"invalid checksum digest format: {values[0]!r} (want sha256:<64 hex digits>)")
    if len(srcs) != 1:
        raise fail("checksum can't be specified for multiple sources")
    if not is_url(srcs[0]):
        raise fail("checksum requires HTTP(S) or Git sources")
    return match.group(1)


def _ignore_rules(build: Build) -> PatternMatcher:
    from builder.context import dockerignore
    return dockerignore.load(build.options.buildfile, build.options.context)


def _heredoc_name(word: str) -> str | None:
    """``<<EOF`` / ``<<-EOF`` / ``<<"EOF"`` / ``<<E'O'F`` → ``EOF`` (quoting any part of the
    delimiter only turns expansion off); None for a word that is no heredoc."""
    if not word.startswith("<<"):
        return None
    return word[2:].lstrip("-").replace("'", "").replace('"', "")


def _heredoc_item(build: Build, doc: Heredoc, env: dict[str, str]) -> Item:
    """A heredoc source: a file named like the delimiter, mode 0644, mtime 0."""
    from builder.context import copy as filecopy
    content = _expand_heredoc(doc.content, env) if doc.expand else doc.content
    path = build.scratch_path() / f"heredoc-{os.urandom(6).hex()}" / doc.name
    path.parent.mkdir()
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    os.chmod(path, 0o644)
    os.utime(path, (0, 0))
    source = Source(path=path, name=doc.name, rel=f"<<{doc.name}", is_dir=False)
    return filecopy.Item(source=source, mode=0o644, mtime=0)


def _expand_heredoc(text: str, env: dict[str, str]) -> str:
    """``$V``, ``${V}``, ``${V:-x}``, ``${V:+x}`` in a heredoc body; quotes are kept, ``\\$``
    is a literal ``$``."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "\\$":
            return "$"
        name, op, word = m.group(1) or m.group(4), m.group(2), m.group(3)
        value = env.get(name, "")
        if op == "-":
            return value or word
        if op == "+":
            return word if value else ""
        return value
    return _VAR.sub(sub, text)
