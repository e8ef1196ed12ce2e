"""ADD and COPY: which sources go where, with which flags.  Pure: the sources are read, the
heredocs written and URLs downloaded by the executor (build/copysources.py).

Flags (values expanded with the build env, like the other arguments):
``--chown=user[:group]`` (resolved in the destination rootfs, see context/owner.py),
``--chmod=0755`` (BuildKit; octal), ``--exclude=PATTERN`` (BuildKit; repeatable, docker
pattern syntax), ``--link`` (BuildKit; accepted and otherwise a no-op: pybuild always writes
the copy into the step's own upper dir, so the layer already holds only what the copy wrote —
the one difference, that BuildKit's ``--link`` does not follow symlinks in the existing dest
path, is not reproduced: pybuild resolves the dest as the classic builder does),
``ADD --checksum=sha256:<hex>`` (one URL source; the download must hash to it), ``COPY --from=``.
"""

from __future__ import annotations

import posixpath
import re

from builder.build.dispatch.common import env_of, expand, nop1
from builder.build.state import Scope, State, StepRef
from builder.build.steps import CopyFlags, CopySource, CopyStep
from builder.buildfile import heredoc
from builder.buildfile.expand import expand_heredoc
from builder.buildfile.instructions import Add, Copy, Flag
from builder.context.chmod import parse_chmod
from builder.context.dockerignore import PatternMatcher
from builder.context.sources import is_url
from builder.errors import ContextError

UNSUPPORTED = ("keep-git-dir",)
_CHECKSUM = re.compile(r"sha256:([0-9a-f]{64})\Z")


def dispatch_copy(inst: Add | Copy, state: State, scope: Scope, step: StepRef) -> CopyStep:
    env = env_of(state)
    flags = parse_flags(inst.flags, lambda word: expand(scope, word, env), step)
    docs = {h.name: h for h in inst.heredocs}
    sources = []
    for word in inst.sources:
        name = heredoc.source_name(word)
        if name in docs:
            doc = docs[name]
            content = expand_heredoc(doc.content, env) if doc.expand else doc.content
            sources.append(CopySource(word=word, heredoc=name, content=content))
        else:
            sources.append(CopySource(word=expand(scope, word, env)))
    dest = expand(scope, inst.dest, env)
    if flags.checksum is not None:
        if len(sources) != 1:
            raise step.error("checksum can't be specified for multiple sources")
        if not is_url(sources[0].word):
            raise step.error("checksum requires HTTP(S) or Git sources")
    if isinstance(inst, Copy) and flags.from_ is None:
        for source in sources:
            if source.heredoc is None and is_url(source.word):
                raise step.error(f"source can't be a URL for COPY: {source.word}")
    workdir = state.run_config.working_dir or "/"
    target = dest if dest.startswith("/") else posixpath.join(workdir, dest)
    if dest.endswith("/") and not target.endswith("/"):
        target += "/"
    return CopyStep(keyword=inst.keyword, sources=tuple(sources), dest=dest, target=target,
                    flags=flags, nop_prefix=nop1(state, ""))


def parse_flags(flags: tuple[Flag, ...], expand_word, step: StepRef) -> CopyFlags:
    """ADD/COPY flags, each value expanded once; a flag pybuild cannot honour, an invalid
    ``--chmod``, ``--exclude`` or ``--checksum`` is the step's error."""
    values: dict[str, list[str | None]] = {}
    for flag in flags:
        values.setdefault(flag.name, []).append(None if flag.value is None else expand_word(flag.value))
    for name in UNSUPPORTED:
        if name in values:
            raise step.error(f"--{name} is not supported by pybuild yet")

    def first(name: str) -> str | None:
        return (values.get(name) or [None])[0]

    try:
        chmod_value = first("chmod")
        chmod = None if chmod_value is None else parse_chmod(chmod_value)
        exclude = tuple(v or "" for v in values.get("exclude", []))
        PatternMatcher.parse(list(exclude))                  # refuse a bad pattern now
    except ContextError as e:
        raise step.error(str(e)) from None
    checksum = None
    if "checksum" in values:
        match = _CHECKSUM.match(first("checksum") or "")
        if match is None:
            raise step.error(f"invalid checksum digest format: {first('checksum')!r} "
                             "(want sha256:<64 hex digits>)")
        checksum = match.group(1)
    link = first("link") if "link" in values else "false"
    parents = first("parents") if "parents" in values else "false"
    return CopyFlags(chown=first("chown") or None, chmod=chmod, exclude=exclude, from_=first("from"),
                     checksum=checksum, link=(link or "true") == "true", parents=(parents or "true") == "true")
