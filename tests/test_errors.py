"""builder/errors.py: one tree, every error picklable with its attributes, BuildfileError.at."""

from __future__ import annotations

import pickle

import pytest

from builder import errors
from builder.buildfile.instructions import Position


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


# one instance of each error, built the way the code builds it
SAMPLES = [
    pytest.param(errors.PybuildError("plain"), id="PybuildError"),
    # keyword-only constructor: BaseException's default pickling would call cls("bad") and fail
    pytest.param(errors.BuildfileError("bad", file="Buildfile", line=3, column=5,
                                       source_line="RUN  echo", hint="try this"), id="BuildfileError"),
    pytest.param(errors.UsageError("no Buildfile"), id="UsageError"),
    pytest.param(errors.ContextError("outside"), id="ContextError"),
    # keyword-only, and its exit code is stored under another name (returncode)
    pytest.param(errors.StepError(step=2, total=4, instruction="RUN false", reason="exit code 1",
                                  exit_code=1), id="StepError"),
    pytest.param(errors.LayerError("bad tar"), id="LayerError"),
    pytest.param(errors.StoreError("missing"), id="StoreError"),
    pytest.param(errors.ImageNotFound("no such image: x"), id="ImageNotFound"),
    pytest.param(errors.ArchiveError("bad archive"), id="ArchiveError"),
    pytest.param(errors.SandboxError("unshare"), id="SandboxError"),
    pytest.param(errors.RegistryError("401"), id="RegistryError"),
    pytest.param(errors.ContainerNotFound("no such container: c1"), id="ContainerNotFound"),
    pytest.param(errors.ManifestError("not a schemaVersion 2 manifest"), id="ManifestError"),
    pytest.param(errors.ExpandError("missing '}'"), id="ExpandError"),
    # a hint and the text the caret points at travel with it (keyword-only at=)
    pytest.param(errors.MountError("unsupported mount type \"bnd\"", "did you mean bind?", at="type=bnd"),
                 id="MountError"),
]


@pytest.mark.parametrize("error", SAMPLES)
def test_every_error_pickles_with_its_attributes(error: errors.PybuildError) -> None:
    error.extra = "set after construction"          # any attribute travels, not only __init__'s
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert back.args == error.args
    assert back.__dict__ == error.__dict__
    assert str(back) == str(error)
    assert back.exit_code == error.exit_code


def test_the_table_names_every_error() -> None:
    sampled = {p.values[0].__class__ for p in SAMPLES}
    tree = {c for c in _all_subclasses(errors.PybuildError) if c.__module__ == errors.__name__}
    assert tree | {errors.PybuildError} <= sampled


def test_buildfile_error_at_a_position() -> None:
    pos = Position("dir/Buildfile", 7, 5, "    COPY a b", end_line=8)
    e = errors.BuildfileError.at(pos, "no such file", hint="check the path")
    assert (e.file, e.line, e.column, e.source_line, e.hint) == ("dir/Buildfile", 7, 5, "    COPY a b",
                                                                 "check the path")
    assert str(e) == "dir/Buildfile:7:5: no such file\n        COPY a b\n        ^\ncheck the path"
