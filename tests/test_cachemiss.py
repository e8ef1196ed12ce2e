"""Why a step missed the cache (build/cachemiss.py): each reason from a pair of records, and
a build that says it end to end."""

from __future__ import annotations

from dataclasses import replace

import pytest
from buildfixtures import build, make_context

from builder.build.cachemiss import StepRecord, closest, reason

BEFORE = StepRecord(number=3, instruction="COPY app /app/", parent="sha256:p1", description='{"kind":"copy"}',
                    args={"V": "1"}, files={"app/a": "1111", "app/b": "2222"})


@pytest.mark.parametrize("now, rerun, want", [
    pytest.param(replace(BEFORE, parent="sha256:p2"), 2, "the image before it changed: step 2 ran again",
                 id="earlier-step-ran"),
    pytest.param(replace(BEFORE, parent="sha256:p2"), None, "is not the one the last build had", id="older-parent"),
    pytest.param(replace(BEFORE, instruction="COPY app /srv/"), None,
                 "the instruction changed (it was: COPY app /app/)", id="instruction"),
    pytest.param(replace(BEFORE, args={"V": "2"}), None, "build-arg changed: V: 1 → 2", id="build-arg"),
    pytest.param(replace(BEFORE, files={"app/a": "1111", "app/b": "9999"}), None, "context files changed: app/b",
                 id="one-file"),
    pytest.param(replace(BEFORE, files={"app/a": "1111", "app/c": "3333"}), None,
                 "context files added: app/c; removed: app/b", id="added-removed"),
    # many files: a few named, the rest counted
    pytest.param(replace(BEFORE, files={f"f{i}": "x" for i in range(5)}, description=BEFORE.description), None,
                 "added: f0, f1, f2 and 2 more", id="many"),
    pytest.param(replace(BEFORE, description='{"kind":"copy","dest":"/x"}'), None,
                 'what the step does changed: dest: null → "/x"', id="description"),
    pytest.param(BEFORE, None, "its cache entry is gone", id="same-key-entry-gone"),
])
def test_reason(now, rerun, want):
    assert want in reason(now, BEFORE, no_cache=False, rerun=rerun)


def test_reason_without_history_or_with_no_cache():
    assert reason(BEFORE, None, no_cache=False, rerun=None) == "no earlier build of this image recorded this step"
    assert reason(BEFORE, BEFORE, no_cache=True, rerun=None) == "--no-cache: every step runs"


def test_the_closest_cached_parent_wins_over_the_newest_build():
    newest = {3: replace(BEFORE, parent="sha256:other")}
    older = {3: BEFORE}
    assert closest(BEFORE, [newest, older]) is older[3]
    assert closest(replace(BEFORE, parent="sha256:new"), [newest, older]) is newest[3]
    assert closest(replace(BEFORE, number=9), [newest, older]) is None


def test_explain_says_which_file_made_a_step_miss(store_root, tmp_path):
    ctx = make_context(tmp_path / "ctx", {"app/a": b"a\n", "app/b": b"b\n",
                                          "Buildfile": b"FROM pbtest/busybox:base\nRUN echo one > /one\n"
                                                       b"COPY app /app/\nRUN ls /app > /list\n"})
    build(store_root, ctx, tag="why")
    (ctx / "app" / "b").write_bytes(b"b changed\n")
    out = build(store_root, ctx, "--explain", tag="why").proc.stdout
    lines = [line.strip() for line in out.splitlines() if line.strip().startswith("cache:")]
    assert lines == ["cache: hit (a build without --explain takes it from the cache)",
                     "cache: miss: context files changed: app/b",
                     "cache: miss: the image before it changed: step 3 ran again",
                     "cache: 1 of 3 steps from the cache (33%)"]
