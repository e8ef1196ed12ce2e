"""builder/layer/sandbox.py: what a helper child raises comes back to the parent as itself.

``call_in_root`` and ``run`` send one pickled Outcome through their pipe; these tests raise
each kind of error in the child and check the parent gets the same type with the same
attributes (the sandbox used to rebuild errors by class name, losing the fields of
StepError and BuildfileError and the type of RegistryError)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_root

from builder import errors
from builder.layer import sandbox
from builder.layer.overlay import OverlayMount


def union(tmp_path: Path) -> OverlayMount:
    """A read-only union of two small lowers (``a`` over ``b``) on ``merged``."""
    require_root()
    for name in ("a", "b", "merged"):
        (tmp_path / name).mkdir()
    (tmp_path / "a" / "who").write_text("a\n")
    return OverlayMount(lowers=("a", "b"), target=str(tmp_path / "merged"), cwd=str(tmp_path))


def raise_it(merged: Path, error: BaseException) -> None:
    assert (merged / "who").read_text() == "a\n"           # it ran over the mounted union
    raise error


@pytest.mark.parametrize("error", [
    # keyword-only fields (step, total, instruction, reason, returncode) survive
    pytest.param(errors.StepError(step=3, total=5, instruction="COPY a b", reason="no such file",
                                  exit_code=None), id="StepError"),
    # used to come back as a plain PybuildError
    pytest.param(errors.RegistryError("registry.example: 401 unauthorized"), id="RegistryError"),
    pytest.param(errors.ContainerNotFound("no such container: c1"), id="ContainerNotFound"),
    # position and hint survive, so the parent still draws the caret
    pytest.param(errors.BuildfileError("bad", file="Buildfile", line=2, column=4,
                                       source_line="RUN  x", hint="h"), id="BuildfileError"),
    pytest.param(errors.ContextError("outside the context"), id="ContextError"),
])
def test_call_in_root_raises_the_childs_error_as_itself(tmp_path, error):
    with pytest.raises(type(error)) as raised:
        sandbox.call_in_root(union(tmp_path), raise_it, error)
    got = raised.value
    assert type(got) is type(error)
    assert got.args == error.args and got.__dict__ == error.__dict__ and str(got) == str(error)


def test_call_in_root_returns_the_value(tmp_path):
    assert sandbox.call_in_root(union(tmp_path), lambda merged: (merged / "who").read_text()) == "a\n"


def test_anything_else_is_an_internal_error_with_the_childs_trace(tmp_path):
    def boom(_merged: Path) -> None:
        raise ValueError("a bug")

    with pytest.raises(RuntimeError, match=r"internal error in sandbox helper \(ValueError\)") as raised:
        sandbox.call_in_root(union(tmp_path), boom)
    assert "in boom" in str(raised.value) and "ValueError: a bug" in str(raised.value)


def test_a_result_that_does_not_pickle_is_an_internal_error(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)\(PicklingError\).*result does not pickle"):
        sandbox.call_in_root(union(tmp_path), lambda _merged: lambda: None)


def test_run_reports_a_setup_error_as_itself(tmp_path):
    require_root()
    (tmp_path / "merged").mkdir()
    # a lower that does not exist: mounting fails in the child, before any command runs
    broken = OverlayMount(lowers=("missing", "also-missing"), target=str(tmp_path / "merged"),
                          cwd=str(tmp_path))
    spec = sandbox.RunSpec(argv=("/bin/true",), env=())
    with pytest.raises(errors.SandboxError, match="mount overlay on .*merged: No such file") as raised:
        sandbox.run(broken, spec, lambda _chunk: None, files_dir=tmp_path)
    assert type(raised.value) is errors.SandboxError


@pytest.mark.parametrize("report, pid, error", [
    pytest.param(b"", None, None, id="nothing"),
    pytest.param(b"pid 42\n", 42, None, id="pid-only"),
    # the error frame may follow the pid line; its pickle may itself hold newlines
    pytest.param(b"pid 42\nerror\n", 42, errors.StepError, id="pid-then-error"),
    pytest.param(b"error\n", None, errors.StepError, id="error-before-any-pid"),
])
def test_control_pipe_report(report, pid, error):
    if error is not None:
        report += sandbox._pickled(sandbox.Outcome(error=errors.StepError(
            step=1, total=1, instruction="RUN x\ny", reason="exit code 2", exit_code=2)))
    got_pid, outcome = sandbox._parse_report(report)
    assert got_pid == pid
    if error is None:
        assert outcome is None
    else:
        assert isinstance(outcome.error, error) and outcome.error.returncode == 2
