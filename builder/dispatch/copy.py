"""ADD and COPY: sources from the build context (or a URL, for ADD) into the root filesystem."""

from __future__ import annotations

import posixpath

from builder.build import Build, State, StepRef
from builder.buildfile.instructions import Add, Copy
from builder.cache import sources_checksum
from builder.context import BuildContext, is_url
from builder.dispatch.common import env_of, expand, unsupported_flag
from builder.errors import StepError
from builder.image import NOP


def dispatch_copy(build: Build, state: State, inst: Add | Copy, step: StepRef) -> State:
    from builder import filecopy
    if inst.flags:
        raise unsupported_flag(step, inst)
    env = env_of(state)
    srcs = [expand(build, s, env) for s in inst.sources]
    dest = expand(build, inst.dest, env)
    context = BuildContext(build.options.context)
    is_add = isinstance(inst, Add)
    items: list[filecopy.Item] = []
    for src in srcs:
        if is_url(src):
            if not is_add:
                raise StepError(step=step.number, total=step.total, instruction=step.original,
                                reason=f"source can't be a URL for COPY: {src}")
            items.append(filecopy.download(src, build.staging_path()))
            continue
        for source in context.resolve(src):
            items.append(filecopy.Item(source=source, extract=is_add and filecopy.is_archive(source)))
    if len(items) > 1 and not dest.endswith("/"):
        raise StepError(step=step.number, total=step.total, instruction=step.original,
                        reason=f"When using {inst.keyword} with more than one source file, "
                               "the destination must be a directory and end with a /")
    workdir = state.config.config.working_dir or "/"
    target = dest if dest.startswith("/") else posixpath.join(workdir, dest)
    if dest.endswith("/") and not target.endswith("/"):
        target += "/"
    created_by = NOP + f"{inst.keyword} {filecopy.checksum(items, build.hashes.sha256)} in {dest} "
    inputs = sources_checksum([(i.source.rel, i.source.path) for i in items], build.hashes) + \
        "".join(f" extract={i.extract} mode={i.mode} mtime={i.mtime}" for i in items)
    return build.change_root(state, created_by, filecopy.copy_items, items, target, inputs=inputs)
