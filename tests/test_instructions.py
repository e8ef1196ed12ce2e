"""Config and history of each instruction as docker's classic builder records them, ARG scoping
and precedence, --build-arg, SHELL's effects and heredoc RUNs (issue 5, semantics)."""

from __future__ import annotations

import pytest
from buildfixtures import Built, build, make_context

from builder.oci.config import parse_config

BASE = "FROM pbtest/busybox:base\n"


def config_and_history(b: Built) -> tuple[dict, list[str]]:
    """The image's config (JSON) and the created_by of each history entry after the base's."""
    base = parse_config(b.store.image_config(b.store.resolve("pbtest/busybox:base")))
    config = b.config()
    return config, [h["created_by"] for h in config["history"][len(base.history):]]


NOP = "/bin/sh -c #(nop)  "

# (Buildfile after the base FROM, config key, expected value, expected created_by of the steps)
CONFIG_CASES = [
    pytest.param("VOLUME /data /var/log\n", "Volumes", {"/data": {}, "/var/log": {}},
                 [NOP + "VOLUME [/data /var/log]"], id="volume-shell-form"),
    pytest.param('ENV D=/d\nVOLUME ["$D", "/e f"]\n', "Volumes", {"/d": {}, "/e f": {}},
                 [NOP + "ENV D=/d", NOP + "VOLUME [/d /e f]"], id="volume-json-expanded"),
    pytest.param("STOPSIGNAL SIGKILL\n", "StopSignal", "SIGKILL", [NOP + "STOPSIGNAL SIGKILL"],
                 id="stopsignal-name"),
    pytest.param("ENV S=9\nSTOPSIGNAL $S\n", "StopSignal", "9", [NOP + "ENV S=9", NOP + "STOPSIGNAL 9"],
                 id="stopsignal-number-expanded"),
    # docker 20.10 writes HEALTHCHECK %q of the *HealthConfig: each field quoted, Retries as a rune
    pytest.param("HEALTHCHECK --interval=5m --timeout=3s CMD wget -q localhost || exit 1\n", "Healthcheck",
                 {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"], "Interval": 300_000_000_000,
                  "Timeout": 3_000_000_000},
                 [NOP + 'HEALTHCHECK &{["CMD-SHELL" "wget -q localhost || exit 1"] "5m0s" "3s" "0s" \'\\x00\'}'],
                 id="healthcheck-shell"),
    pytest.param('HEALTHCHECK --start-period=1m30s --retries=3 CMD ["true"]\n', "Healthcheck",
                 {"Test": ["CMD", "true"], "StartPeriod": 90_000_000_000, "Retries": 3},
                 [NOP + 'HEALTHCHECK &{["CMD" "true"] "0s" "0s" "1m30s" \'\\x03\'}'], id="healthcheck-exec"),
    # classic quirk (checked against docker): zero fields are filled from the previous HEALTHCHECK
    pytest.param("HEALTHCHECK --retries=2 --timeout=1s CMD true\nHEALTHCHECK --timeout=2s CMD false\n",
                 "Healthcheck", {"Test": ["CMD-SHELL", "false"], "Timeout": 2_000_000_000, "Retries": 2},
                 [NOP + 'HEALTHCHECK &{["CMD-SHELL" "true"] "0s" "1s" "0s" \'\\x02\'}',
                  NOP + 'HEALTHCHECK &{["CMD-SHELL" "false"] "0s" "2s" "0s" \'\\x00\'}'],
                 id="healthcheck-inherits-zero-fields"),
    pytest.param("HEALTHCHECK NONE\n", "Healthcheck", {"Test": ["NONE"]},
                 [NOP + 'HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}'], id="healthcheck-none"),
    pytest.param("ONBUILD RUN echo hi\nONBUILD env A=1\n", "OnBuild", ["RUN echo hi", "env A=1"],
                 [NOP + "ONBUILD RUN echo hi", NOP + "ONBUILD env A=1"], id="onbuild-recorded"),
    pytest.param('SHELL ["/bin/sh", "-ec"]\nENV A=1\n', "Shell", ["/bin/sh", "-ec"],
                 ["/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]", "/bin/sh -ec #(nop)  ENV A=1"],
                 id="shell-and-nop-under-it"),
    # the ARG history entry shows the default, the config does not change
    pytest.param("ARG a=1 b\n", "Env", ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                 [NOP + "ARG a=1 b"], id="arg-history-only"),
]


@pytest.mark.parametrize("text, key, value, history", CONFIG_CASES)
def test_config_and_history(text, key, value, history, session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx", {"Buildfile": BASE + text})
    config, created_by = config_and_history(build(session_store, ctx, "-q"))
    assert config["config"].get(key) == value
    assert created_by == history


def test_maintainer_sets_author_of_image_and_later_entries(session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx", {"Buildfile": BASE + "ENV A=1\nMAINTAINER Jo <jo@x>\nENV B=2\n"})
    config, created_by = config_and_history(build(session_store, ctx, "-q"))
    assert config["author"] == "Jo <jo@x>"
    assert created_by == [NOP + "ENV A=1", NOP + "MAINTAINER Jo <jo@x>", NOP + "ENV B=2"]
    authors = [h.get("author", "") for h in config["history"][-3:]]
    assert authors == ["", "Jo <jo@x>", "Jo <jo@x>"]


# (Buildfile, --build-args, expected created_by of the steps).  Every RUN checks its own env.
ARG_CASES = [
    pytest.param('ARG a=1\nRUN test "$a" = 1\n', (),
                 [NOP + "ARG a=1", '|1 a=1 /bin/sh -c test "$a" = 1'], id="default"),
    pytest.param('ARG a=1\nRUN test "$a" = 2\n', ("a=2",),
                 [NOP + "ARG a=1", '|1 a=2 /bin/sh -c test "$a" = 2'], id="build-arg-overrides-default"),
    # created_by lists the args sorted, after their count
    pytest.param('ARG z=26 a\nARG m=$z\nRUN test "$a$m$z" = 12626\n', ("a=1",),
                 [NOP + "ARG z=26 a", NOP + "ARG m=26", '|3 a=1 m=26 z=26 /bin/sh -c test "$a$m$z" = 12626'],
                 id="sorted-and-expanded"),
    # classic builder: ENV always wins over an ARG of the same name, and hides it from created_by
    pytest.param('ARG A=1\nENV A=2\nRUN test "$A" = 2\n', ("A=3",),
                 [NOP + "ARG A=1", NOP + "ENV A=2", '/bin/sh -c test "$A" = 2'], id="env-wins"),
    pytest.param('ENV A=2\nARG A=1\nRUN test "$A" = 2\n', (),
                 [NOP + "ENV A=2", NOP + "ARG A=1", '/bin/sh -c test "$A" = 2'], id="env-wins-declared-after"),
    # ARG values are seen by later expansions
    pytest.param('ARG d=/srv\nWORKDIR $d\nENV X=$d\n', (),
                 [NOP + "ARG d=/srv", "/bin/sh -c #(nop) WORKDIR /srv", NOP + "ENV X=/srv"], id="expansion"),
    # before its ARG line a name is empty
    pytest.param('RUN test -z "$a"\nARG a=1\n', ("a=5",),
                 ['/bin/sh -c test -z "$a"', NOP + "ARG a=1"], id="not-before-declaration"),
    # an undeclared proxy arg reaches RUN; classic prefixes |0 (it is allowed but not shown)
    pytest.param('RUN test "$HTTP_PROXY" = http://p\n', ("HTTP_PROXY=http://p",),
                 ['|0 /bin/sh -c test "$HTTP_PROXY" = http://p'], id="proxy-undeclared"),
    pytest.param('ARG http_proxy\nRUN test "$http_proxy" = http://p\n', ("http_proxy=http://p",),
                 [NOP + "ARG http_proxy", '|1 http_proxy=http://p /bin/sh -c test "$http_proxy" = http://p'],
                 id="proxy-declared"),
    # exec form: args go first too
    pytest.param('ARG a=1\nRUN ["sh", "-c", "test $a = 1"]\n', (),
                 [NOP + "ARG a=1", "|1 a=1 sh -c test $a = 1"], id="exec-form"),
]


@pytest.mark.parametrize("text, args, history", ARG_CASES)
def test_arg_scoping(text, args, history, session_store, tmp_path):
    extra = [f"--build-arg={a}" for a in args]
    ctx = make_context(tmp_path / "ctx", {"Buildfile": BASE + text})
    config, created_by = config_and_history(build(session_store, ctx, "-q", *extra))
    assert created_by == history
    assert not any(e.startswith(("a=", "z=", "m=", "http_proxy=", "HTTP_PROXY=", "d="))
                   for e in config["config"]["Env"]), "ARG values never reach the config"


def test_global_args_only_in_from(session_store, tmp_path):
    text = ('ARG IMG=pbtest/busybox\nARG TAG=nope\nFROM $IMG:$TAG\n'
            'RUN test -z "$IMG"\nARG TAG\nRUN test "$TAG" = base\n')
    ctx = make_context(tmp_path / "ctx", {"Buildfile": text})
    config, created_by = config_and_history(build(session_store, ctx, "-q", "--build-arg", "TAG=base"))
    assert created_by == ['/bin/sh -c test -z "$IMG"', NOP + "ARG TAG",
                          '|1 TAG=base /bin/sh -c test "$TAG" = base']


def test_arg_value_is_in_the_cache_key(session_store, tmp_path):
    text = BASE + "ARG v=1\nRUN echo $v > /v\n"
    ctx = make_context(tmp_path / "ctx", {"Buildfile": text})
    one, _ = config_and_history(build(session_store, ctx, "-q"))
    two, _ = config_and_history(build(session_store, ctx, "-q", "--build-arg", "v=2"))
    again, _ = config_and_history(build(session_store, ctx, "-q"))
    assert one["rootfs"] != two["rootfs"]
    assert one == again


def test_unused_build_arg_warns(session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx", {"Buildfile": BASE + "ENV A=1\n"})
    proc = build(session_store, ctx, "--build-arg", "nobody=1").proc
    assert "nobody" in proc.stdout + proc.stderr


SHELL_CASES = [
    pytest.param('SHELL ["/bin/sh", "-ec"]\nRUN test "$-" != "${-#*e}"\n', ["/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
                 '/bin/sh -ec test "$-" != "${-#*e}"'], None, id="run-uses-shell"),
    pytest.param('SHELL ["/bin/sh", "-xc"]\nCMD echo hi\n', ["/bin/sh -xc #(nop)  SHELL [/bin/sh -xc]",
                 '/bin/sh -xc #(nop)  CMD ["/bin/sh" "-xc" "echo hi"]'], ["/bin/sh", "-xc", "echo hi"],
                 id="cmd-uses-shell"),
    pytest.param('SHELL ["/bin/sh", "-xc"]\nWORKDIR /w\n', ["/bin/sh -xc #(nop)  SHELL [/bin/sh -xc]",
                 "/bin/sh -xc #(nop) WORKDIR /w"], None, id="workdir-under-shell"),
]


@pytest.mark.parametrize("text, history, cmd", SHELL_CASES)
def test_shell(text, history, cmd, session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx", {"Buildfile": BASE + text})
    config, created_by = config_and_history(build(session_store, ctx, "-q"))
    assert created_by == history
    if cmd is not None:
        assert config["config"]["Cmd"] == cmd


HEREDOC_CASES = [
    # a lone heredoc is the shell script
    pytest.param("RUN <<EOF\necho a > /h1\necho b >> /h1\nEOF\nRUN test \"$(cat /h1)\" = \"$(printf 'a\\nb')\"\n",
                 "/bin/sh -c echo a > /h1\necho b >> /h1\n", id="script"),
    # a shebang body runs as a file, which is not left in the layer
    pytest.param("RUN <<EOF\n#!/bin/sh -e\necho $0 > /h2\nEOF\nRUN test \"$(cat /h2)\" = /.pybuild-heredoc-EOF "
                 "&& test ! -e /.pybuild-heredoc-EOF\n", "/.pybuild-heredoc-EOF", id="shebang"),
    # a command with a heredoc: the shell does the heredoc
    pytest.param("RUN cat <<A > /h3\nx $HOME\nA\nRUN test \"$(cat /h3)\" = 'x /root'\n",
                 "/bin/sh -c cat <<A > /h3\nx $HOME\nA\n", id="command"),
    pytest.param("RUN cat <<'A' > /h4 && cat <<B >> /h4\n$x\nA\ny\nB\n"
                 "RUN test \"$(cat /h4)\" = \"$(printf '$x\\ny')\"\n",
                 "/bin/sh -c cat <<'A' > /h4 && cat <<B >> /h4\n$x\nA\ny\nB\n", id="two-quoted"),
]


@pytest.mark.parametrize("text, first", HEREDOC_CASES)
def test_heredoc_run(text, first, session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx", {"Buildfile": BASE + text})
    config, created_by = config_and_history(build(session_store, ctx, "-q"))
    assert created_by[0] == first


ERROR_CASES = [
    pytest.param("STOPSIGNAL SIGNOPE\n", "Invalid signal: SIGNOPE", id="bad-signal"),
    pytest.param("ENV E=\nVOLUME $E\n", "VOLUME specified can not be an empty string", id="empty-volume"),
]


@pytest.mark.parametrize("text, message", ERROR_CASES)
def test_errors(text, message, session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx", {"Buildfile": BASE + text})
    proc = build(session_store, ctx, "-q", check=False).proc
    assert proc.returncode != 0
    assert message in proc.stderr
