"""Multi-stage builds: FROM an earlier stage, --target, stages the target does not need are
not built, stage results as images for COPY --from, ONBUILD triggers, ARG scope per stage."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from buildfixtures import build, make_context
from imagecheck import validate_image

from builder.build.log import BuildLog
from builder.build.session import Build
from builder.build.state import BuildOptions
from builder.buildfile.parse import parse_buildfile
from builder.errors import ImageNotFound
from builder.oci.config import parse_config
from builder.store.store import Store

BASE = "pbtest/busybox:base"


def image_config(root: Path, ref: str) -> dict:
    store = Store(root)
    image_id = store.resolve(ref)
    validate_image(store, image_id)
    return json.loads(store.image_config(image_id))


TWO_STAGES = f"""FROM {BASE} AS Builder
RUN echo built > /artifact
ENV IN_BUILDER=1
FROM builder
RUN test "$(cat /artifact)" = built && test "$IN_BUILDER" = 1
"""


def test_from_an_earlier_stage_continues_it(session_store, tmp_path):
    build(session_store, make_context(tmp_path / "ctx", {"Buildfile": TWO_STAGES}), tag="st/two")
    cfg = image_config(session_store, "st/two")
    created_by = [h["created_by"] for h in cfg["history"][-3:]]
    assert created_by == ["/bin/sh -c echo built > /artifact", "/bin/sh -c #(nop)  ENV IN_BUILDER=1",
                          '/bin/sh -c test "$(cat /artifact)" = built && test "$IN_BUILDER" = 1']


SKIPPING = f"""FROM {BASE} AS broken
RUN exit 3
FROM {BASE} AS good
RUN echo ok > /ok
FROM good AS after
RUN exit 4
"""


@pytest.mark.parametrize("extra, ok", [
    pytest.param(("--target", "good"), True, id="target-skips-unneeded-and-later"),
    pytest.param(("--target", "GOOD"), True, id="target-case-insensitive"),
    pytest.param(("--target", "broken"), False, id="target-builds-the-broken-stage"),
    pytest.param((), False, id="default-target-is-last-stage"),
])
def test_target(extra, ok, session_store, tmp_path):
    proc = build(session_store, make_context(tmp_path / "ctx", {"Buildfile": SKIPPING}),
                 *extra, tag="st/target", check=False).proc
    assert (proc.returncode == 0) is ok, proc.stderr
    if ok:
        assert "skipping stage 0 (broken)" in proc.stdout
        cfg = image_config(session_store, "st/target")
        assert cfg["history"][-1]["created_by"] == "/bin/sh -c echo ok > /ok"


def test_unneeded_stage_before_the_last_is_skipped(session_store, tmp_path):
    text = f"FROM {BASE} AS unused\nRUN exit 5\nFROM {BASE}\nENV DONE=1\n"
    proc = build(session_store, make_context(tmp_path / "ctx", {"Buildfile": text})).proc
    assert "skipping stage 0 (unused)" in proc.stdout


def test_unknown_target(session_store, tmp_path):
    proc = build(session_store, make_context(tmp_path / "ctx", {"Buildfile": SKIPPING}),
                 "--target", "nope", check=False).proc
    assert proc.returncode == 2
    assert "failed to reach build target nope" in proc.stderr


def test_image_for_copy_from(session_store, tmp_path):
    text = f"FROM {BASE} AS first\nRUN echo 1 > /one\nFROM scratch AS second\nFROM {BASE}\nENV X=1\n"
    store = Store(session_store)
    session = Build(store, BuildOptions(buildfile=tmp_path / "Buildfile", context=tmp_path),
                    BuildLog(out=io.StringIO()))
    final = session.run(parse_buildfile(text, file="Buildfile"))
    assert session.stage_images.keys() == {2}                  # the others are not needed
    first = session.image_for_copy_from("first")               # built on demand (--from=$VAR)
    assert first == session.image_for_copy_from("0") == session.image_for_copy_from("FIRST")
    assert parse_config(store.image_config(first)).history[-1].created_by == "/bin/sh -c echo 1 > /one"
    assert parse_config(store.image_config(session.image_for_copy_from("1"))).diff_ids == ()
    assert session.image_for_copy_from(BASE) == store.resolve(BASE)
    with pytest.raises(ImageNotFound, match="the current or a later stage"):
        session.image_for_copy_from("2")          # the current stage
    assert final not in (first, session.image_for_copy_from("1"))


def test_stage_needed_by_copy_from_is_built(session_store, tmp_path):
    from builder.build.plan import plan
    text = (f"FROM {BASE} AS a\nFROM {BASE} AS b\nFROM {BASE} AS c\nCOPY --from=b /x /x\n"
            f"FROM c\nCOPY --from=0 /y /y\n")
    p = plan(parse_buildfile(text, file="Buildfile"), None)
    assert (p.target, sorted(p.needed)) == (3, [0, 1, 2, 3])
    p = plan(parse_buildfile(text, file="Buildfile"), "c")
    assert (p.target, sorted(p.needed)) == (2, [1, 2])


def test_args_are_per_stage(session_store, tmp_path):
    text = (f"ARG G=global\nFROM {BASE} AS one\nARG S=stage\nRUN test $S = stage\n"
            f"FROM one\nRUN test -z \"$S$G\"\nARG G\nRUN test $G = global\n")
    build(session_store, make_context(tmp_path / "ctx", {"Buildfile": text}), tag="st/args")
    cfg = image_config(session_store, "st/args")
    assert [h["created_by"] for h in cfg["history"][-3:]] == [
        '/bin/sh -c test -z "$S$G"', "/bin/sh -c #(nop)  ARG G", "|1 G=global /bin/sh -c test $G = global"]


def test_onbuild_triggers_run_after_from_and_are_cleared(session_store, tmp_path):
    parent = (f"FROM {BASE}\nONBUILD RUN echo triggered > /t\nONBUILD ENV FROM_TRIGGER=yes\n"
              "ENV PARENT=1\n")
    build(session_store, make_context(tmp_path / "p" / "ctx", {"Buildfile": parent}), tag="st/onbuild-parent")
    pcfg = image_config(session_store, "st/onbuild-parent")
    assert pcfg["config"]["OnBuild"] == ["RUN echo triggered > /t", "ENV FROM_TRIGGER=yes"]
    child = "FROM st/onbuild-parent\nRUN test \"$(cat /t)\" = triggered && test $FROM_TRIGGER = yes\n"
    build(session_store, make_context(tmp_path / "ctx", {"Buildfile": child}), tag="st/onbuild-child")
    cfg = image_config(session_store, "st/onbuild-child")
    assert cfg["config"].get("OnBuild") is None
    assert "FROM_TRIGGER=yes" in cfg["config"]["Env"]
    n = len(pcfg["history"])
    assert [h["created_by"] for h in cfg["history"][n:]] == [
        "/bin/sh -c echo triggered > /t", "/bin/sh -c #(nop)  ENV FROM_TRIGGER=yes",
        '/bin/sh -c test "$(cat /t)" = triggered && test $FROM_TRIGGER = yes']
    # a grandchild does not run them again
    grandchild = "FROM st/onbuild-child\nRUN test ! -e /t || rm /t\n"
    build(session_store, make_context(tmp_path / "ctx", {"Buildfile": grandchild}), tag="st/onbuild-gc")
