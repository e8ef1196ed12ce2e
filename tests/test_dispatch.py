"""Handlers are pure: an instruction and a state in, a step description out — no store, no
root, no mount.  Each row parses one instruction, dispatches it on a known state and checks
the description; the builds that carry these descriptions out are tested elsewhere
(test_instructions, test_addcopy, the conformance cases)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from builder.build.dispatch import dispatch
from builder.build.dispatch.config import parse_go_duration, valid_signal
from builder.build.dispatch.stage import dispatch_meta_arg
from builder.build.plan import plan
from builder.build.state import Scope, State, StepRef
from builder.build.steps import (
    ConfigStep,
    CopyFlags,
    CopySource,
    CopyStep,
    FromStep,
    RunStep,
    Script,
    WorkdirStep,
    canonical,
)
from builder.buildfile.heredoc import SCRIPT_DIR, run_argv, source_name
from builder.buildfile.instructions import Heredoc
from builder.buildfile.parse import parse_buildfile
from builder.context.chmod import Chmod
from builder.errors import BuildfileError, StepError
from builder.oci.config import RunConfig, empty_config

NOP = "/bin/sh -c #(nop) "
BASE = State(config=replace(empty_config(), config=RunConfig(env=("PATH=/bin", "HOME=/root"),
                                                             working_dir="/app")),
             args=(("V", "1"),), proxy_args=(("http_proxy", "http://p"),))


NO_SCOPE = Scope()


def describe(line: str, state: State = BASE, scope: Scope = NO_SCOPE):
    inst = parse_buildfile(f"FROM scratch\n{line}\n", file="Buildfile").instructions[1]
    return dispatch(inst, state, scope, StepRef(2, 2, inst.original))


@pytest.mark.parametrize("line, step", [
    pytest.param("RUN echo $V", RunStep(argv=("/bin/sh", "-c", "echo $V"),
                                        created_by="|1 V=1 /bin/sh -c echo $V",
                                        env=("PATH=/bin", "HOME=/root", "V=1", "http_proxy=http://p")),
                 id="run-shell-args-in-env-and-created-by"),
    # exec form: no shell; proxy args reach the env but never created_by
    pytest.param('RUN ["ls", "-l"]', RunStep(argv=("ls", "-l"), created_by="|1 V=1 ls -l",
                                            env=("PATH=/bin", "HOME=/root", "V=1", "http_proxy=http://p")),
                 id="run-exec"),
    pytest.param("CMD echo hi", ConfigStep(created_by=NOP + ' CMD ["/bin/sh" "-c" "echo hi"]',
                                           run_config=replace(BASE.run_config, cmd=("/bin/sh", "-c", "echo hi")),
                                           cmd_set=True), id="cmd"),
    pytest.param("ENV A=$V B=${HOME}x", ConfigStep(
        created_by=NOP + " ENV A=1 B=/rootx",
        run_config=BASE.run_config.with_env("A", "1").with_env("B", "/rootx")), id="env-expands"),
    pytest.param("WORKDIR sub/$V", WorkdirStep(path="/app/sub/1", created_by=NOP + "WORKDIR /app/sub/1"),
                 id="workdir-relative"),
    pytest.param("USER nobody:$V", ConfigStep(created_by=NOP + " USER nobody:1",
                                              run_config=replace(BASE.run_config, user="nobody:1")), id="user"),
    pytest.param("MAINTAINER me", ConfigStep(created_by=NOP + " MAINTAINER me", run_config=BASE.run_config,
                                             maintainer="me"), id="maintainer"),
    # the values are scope, not config; ARG V again without a default (and no --build-arg or
    # meta ARG) leaves V without a value, as the classic builder's buildArgs does
    pytest.param("ARG V W=2", ConfigStep(created_by=NOP + " ARG V W=2", run_config=BASE.run_config,
                                         args=(("W", "2"),)), id="arg-redeclared-and-default"),
    pytest.param("COPY --chown=1:$V a* /dst/", CopyStep(
        keyword="COPY", sources=(CopySource("a*"),), dest="/dst/", target="/dst/",
        flags=CopyFlags(chown="1:1"), nop_prefix=NOP), id="copy-flags-expanded"),
    pytest.param("ADD --chmod=640 --exclude=*.md src rel/", CopyStep(
        keyword="ADD", sources=(CopySource("src"),), dest="rel/", target="/app/rel/",
        flags=CopyFlags(chmod=Chmod(octal=0o640), exclude=("*.md",)), nop_prefix=NOP), id="add-relative-dest"),
    pytest.param("COPY --from=build /out /in", CopyStep(
        keyword="COPY", sources=(CopySource("/out"),), dest="/in", target="/in",
        flags=CopyFlags(from_="build"), nop_prefix=NOP), id="copy-from"),
])
def test_handler_describes_step(line, step):
    assert describe(line) == step


def test_copy_heredoc_source_carries_its_expanded_body():
    step = describe("COPY <<EOF /x\nv=$V\nEOF")
    assert step.sources == (CopySource("<<EOF", heredoc="EOF", content="v=1\n"),)
    assert step.created_by("file:abc") == NOP + "COPY file:abc in /x "


@pytest.mark.parametrize("line, message", [
    pytest.param("COPY http://x/y /d", "source can't be a URL for COPY: http://x/y", id="copy-url"),
    pytest.param("ADD --chmod=9 a /d", "invalid chmod parameter: '9'", id="bad-chmod"),
    pytest.param("ADD --checksum=sha256:00 http://x/a /d", "invalid checksum digest format", id="bad-checksum"),
    pytest.param(f"ADD --checksum=sha256:{'0' * 64} a /d", "checksum requires HTTP(S) or Git sources",
                 id="checksum-not-url"),
    pytest.param("ADD --keep-git-dir=true a /d/", "--keep-git-dir is not supported by pybuild yet",
                 id="add-keep-git-dir"),
    pytest.param("STOPSIGNAL SIGNOPE", "Invalid signal: SIGNOPE", id="stopsignal"),
    pytest.param("VOLUME $UNSET", "VOLUME specified can not be an empty string", id="empty-volume"),
])
def test_handler_refuses_with_the_steps_error(line, message):
    with pytest.raises(StepError) as info:
        describe(line)
    assert info.value.step == 2 and message in str(info.value)


def test_expansion_errors_point_at_the_instruction():
    with pytest.raises(BuildfileError) as info:
        describe("ENV A=${B")
    assert (info.value.line, info.value.column) == (2, 1)


@pytest.mark.parametrize("image, scope, step", [
    pytest.param("base:$TAG", Scope(meta_args=(("TAG", "1"),)), FromStep(image="base:1"), id="meta-arg"),
    # an earlier stage by name; a digit names the image "0", as docker does
    pytest.param("Builder", Scope(stage_names=("builder", None), stage=1), FromStep(image="Builder", stage=0),
                 id="earlier-stage"),
    pytest.param("0", Scope(stage_names=("builder", None), stage=1), FromStep(image="0"), id="digit-is-image"),
    pytest.param("x", Scope(build_args=(("HTTP_PROXY", "h"), ("B", "2"))),
                 FromStep(image="x", proxy_args=(("HTTP_PROXY", "h"),)), id="proxy-args-kept"),
])
def test_from(image, scope, step):
    inst = parse_buildfile(f"FROM {image}\n", file="Buildfile").instructions[0]
    assert dispatch(inst, None, scope, StepRef(1, 1, inst.original)) == step


def test_meta_args_resolve_in_order_and_report_what_they_used():
    inst = parse_buildfile("ARG A=1 B=$A C\nFROM x\n", file="Buildfile").instructions[0]
    meta = dispatch_meta_arg(inst, Scope(build_args=(("C", "3"), ("Z", "9"))))
    assert (meta.values, meta.consumed) == ((("A", "1"), ("B", "1"), ("C", "3")), frozenset({"C"}))


# -- the cache key's input -------------------------------------------------------------------
def test_canonical_leaves_out_runtime_fields_and_names_the_kind():
    a = RunStep(argv=("sh",), created_by="sh", env=("http_proxy=1",))
    b = replace(a, env=("http_proxy=2",))
    assert canonical(a) == canonical(b) == ('{"argv":["sh"],"created_by":"sh","kind":"run","mounts":[],'
                                           '"network":"default","script":null}')
    assert canonical(replace(a, script=Script("/s", b"#!x"))) != canonical(a)


@pytest.mark.parametrize("a, b", [
    pytest.param(ConfigStep("c", RunConfig()), ConfigStep("c", RunConfig(user="u")), id="run-config"),
    pytest.param(WorkdirStep("/a", "c"), RunStep(argv=(), created_by="c"), id="kind"),
    pytest.param(CopyStep("COPY", (CopySource("a"),), "/d", "/d", CopyFlags(), NOP),
                 CopyStep("COPY", (CopySource("a"),), "/d", "/d", CopyFlags(chmod=Chmod(octal=0o600)), NOP),
                 id="flags"),
    pytest.param(CopyStep("COPY", (CopySource("<<A", "A", "x"),), "/d", "/d", CopyFlags(), NOP),
                 CopyStep("COPY", (CopySource("<<A", "A", "y"),), "/d", "/d", CopyFlags(), NOP), id="heredoc-body"),
])
def test_what_a_step_does_changes_its_key(a, b):
    assert canonical(a) != canonical(b)


def test_arg_values_do_not_change_the_key_of_the_arg_step():
    a = ConfigStep("ARG V", RunConfig(), args=(("V", "1"),), consumed=frozenset({"V"}))
    assert canonical(a) == canonical(replace(a, args=(("V", "2"),), consumed=frozenset()))


# -- stage planning ------------------------------------------------------------------------
STAGES = "FROM b AS a\nFROM b AS b\nFROM b AS c\nCOPY --from=b /x /x\nFROM c\nCOPY --from=0 /y /y\n"


@pytest.mark.parametrize("text, target, goal, needed", [
    pytest.param(STAGES, None, 3, [0, 1, 2, 3], id="last-stage-needs-all"),
    pytest.param(STAGES, "C", 2, [1, 2], id="target-case-insensitive"),
    pytest.param("FROM x AS a\nFROM x AS b\n", None, 1, [1], id="unrelated-stage-skipped"),
    # ONBUILD's COPY --from runs in a child build, not here
    pytest.param("FROM x AS a\nFROM x\nONBUILD COPY --from=a /a /a\n", None, 1, [1], id="onbuild-ignored"),
    pytest.param("ARG V\nFROM x AS a\nFROM a\n", None, 1, [0, 1], id="from-stage"),
    # a RUN --mount from= another stage needs it built first
    pytest.param("FROM x AS tools\nFROM x AS other\nFROM x\nRUN --mount=type=bind,from=tools,target=/t true\n",
                 None, 2, [0, 2], id="run-mount-from-stage"),
])
def test_plan(text, target, goal, needed):
    p = plan(parse_buildfile(text, file="Buildfile"), target)
    assert (p.target, sorted(p.needed)) == (goal, needed)
    assert p.steps == len(parse_buildfile(text, file="Buildfile").instructions)


def test_plan_unknown_target_names_the_stages():
    with pytest.raises(Exception, match=r"failed to reach build target nope .*\(stage names: a\)"):
        plan(parse_buildfile("FROM x AS a\n", file="Buildfile"), "nope")


# -- heredocs ----------------------------------------------------------------------------
SH = ("/bin/sh", "-c")


@pytest.mark.parametrize("text, docs, argv, script", [
    pytest.param("<<EOF", (Heredoc("EOF", "echo a\n"),), SH + ("echo a\n",), None, id="lone-body-runs-in-shell"),
    pytest.param("<<EOF", (Heredoc("EOF", "#!/bin/busybox sh\necho a\n"),), (SCRIPT_DIR + "EOF",),
                 (SCRIPT_DIR + "EOF", b"#!/bin/busybox sh\necho a\n"), id="shebang-is-a-file"),
    pytest.param("<<E+F", (Heredoc("E+F", "#!x\n"),), (SCRIPT_DIR + "E_F",), (SCRIPT_DIR + "E_F", b"#!x\n"),
                 id="delimiter-made-a-file-name"),
    # with other words, the shell does the heredoc: line, bodies, terminators
    pytest.param("cat <<A >/x", (Heredoc("A", "1"),), SH + ("cat <<A >/x\n1\nA\n",), None, id="command-with-heredoc"),
    pytest.param("<<A cat && <<B cat", (Heredoc("A", "1\n"), Heredoc("B", "")),
                 SH + ("<<A cat && <<B cat\n1\nA\nB\n",), None, id="two-heredocs"),
])
def test_run_argv(text, docs, argv, script):
    assert run_argv(text, docs, SH) == (argv, script)


@pytest.mark.parametrize("word, name", [
    ("<<EOF", "EOF"), ("<<-EOF", "EOF"), ('<<"EOF"', "EOF"), ("<<E'O'F", "EOF"), ("file", None), ("<EOF", None),
])
def test_heredoc_source_name(word, name):
    assert source_name(word) == name




# -- HEALTHCHECK durations and STOPSIGNAL names ---------------------------------------------
@pytest.mark.parametrize("text, ns", [
    ("0", 0), ("30s", 30_000_000_000), ("1m30s", 90_000_000_000), ("1.5h", 5_400_000_000_000),
    ("500ms", 500_000_000), ("2us", 2_000), ("2µs", 2_000), ("-1s", -1_000_000_000), ("+1ns", 1),
    (".5s", 500_000_000), ("1", None), ("s", None), ("1x", None), ("", None), ("1s ", None),
])
def test_parse_go_duration(text, ns):
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("sig, ok", [
    ("SIGTERM", True), ("term", True), ("9", True), ("64", True), ("65", False), ("0", False),
    ("SIGRTMIN+3", True), ("RTMAX-14", True), ("RTMAX-15", False), ("SIGNOPE", False), ("", False),
])
def test_valid_signal(sig, ok):
    assert valid_signal(sig) is ok
