"""``RUN --mount``/``--network``/``--security`` values as BuildKit reads them
(buildfile/runmount.py), and the Buildfile errors a bad one gives (FILE:LINE:COL, the line, a
caret under the field, a did-you-mean).  Pure tables, plus a few builds for the errors that
only the handler can give (expanded values, a target that ends on /).

Messages marked ``# 20.10`` are docker 20.10 BuildKit's own, verbatim (test_buildkit_
differential.py::test_parse_errors_as_buildkit checks them against a live BuildKit too).
"""

from __future__ import annotations

import pytest
from buildfixtures import build, make_context

from builder.buildfile.runmount import MountSpec, parse_mount, parse_network, parse_security
from builder.errors import MountError


def spec(**fields) -> MountSpec:
    return MountSpec(**fields)


PARSED = [
    # -- defaults per type -----------------------------------------------------------------
    pytest.param("target=/x", spec(type="bind", target="/x"), id="bind-is-the-default-type-read-only"),
    pytest.param("type=cache,target=/c", spec(type="cache", target="/c", id="/c", readonly=False),
                 id="cache-id-is-its-target-read-write"),
    pytest.param("type=cache,target=c/rel", spec(type="cache", target="c/rel", id="c/rel", readonly=False),
                 id="cache-id-is-the-target-as-written"),   # the handler makes the target absolute only
    pytest.param("type=tmpfs,target=/t", spec(type="tmpfs", target="/t", readonly=False), id="tmpfs-read-write"),
    pytest.param("type=secret,id=tok", spec(type="secret", target="/run/secrets/tok", id="tok"),
                 id="secret-default-target"),
    pytest.param("type=secret,target=/root/.npmrc", spec(type="secret", target="/root/.npmrc", id=".npmrc"),
                 id="secret-id-from-target-basename"),
    pytest.param("type=secret,source=tok", spec(type="secret", target="/run/secrets/tok", id="tok"),
                 id="secret-source-is-the-id"),
    pytest.param("type=secret,id=a/b", spec(type="secret", target="/run/secrets/b", id="a/b"),
                 id="secret-default-target-uses-basename"),
    pytest.param("type=secret,id=tok,env=TOKEN", spec(type="secret", target="", id="tok", env="TOKEN"),
                 id="secret-env-only-no-file"),
    pytest.param("type=secret,id=tok,env=TOKEN,target=/t", spec(type="secret", target="/t", id="tok", env="TOKEN"),
                 id="secret-env-and-file"),
    pytest.param("type=ssh", spec(type="ssh", target="/run/buildkit/ssh_agent.0", id="default"),
                 id="ssh-defaults"),
    pytest.param("type=bind", spec(type="bind", target=""), id="bind-without-target-joined-to-workdir-later"),
    # -- keys, aliases, spellings ----------------------------------------------------------
    pytest.param("type=bind,src=a,dst=/b,rw", spec(type="bind", target="/b", source="a", readonly=False),
                 id="aliases-src-dst-rw"),
    pytest.param("type=bind,source=a,destination=/b,ro=false", spec(type="bind", target="/b", source="a",
                                                                    readonly=False), id="destination-ro-false"),
    pytest.param("type=cache,target=/c,readonly", spec(type="cache", target="/c", id="/c", readonly=True),
                 id="readonly-alone-is-true"),
    pytest.param("type=cache,target=/c,readwrite=0", spec(type="cache", target="/c", id="/c", readonly=True),
                 id="go-parsebool-0"),
    pytest.param("TYPE=BIND,Target=/x,SOURCE=f", spec(type="bind", target="/x", source="f"),
                 id="keys-and-type-case-insensitive"),
    pytest.param("type=cache,target=/c,sharing=LOCKED", spec(type="cache", target="/c", id="/c", readonly=False,
                                                             sharing="locked"), id="sharing-case-insensitive"),
    pytest.param("type=cache,target=/c,id=x,mode=0700,uid=1000,gid=50",
                 spec(type="cache", target="/c", id="x", readonly=False, mode=0o700, uid=1000, gid=50),
                 id="cache-mode-octal-uid-gid-decimal"),
    pytest.param("type=cache,target=/c,mode=755", spec(type="cache", target="/c", id="/c", readonly=False,
                                                       mode=0o755), id="mode-octal-without-leading-zero"),
    pytest.param("type=secret,id=s,required,mode=0440", spec(type="secret", target="/run/secrets/s", id="s",
                                                             required=True, mode=0o440), id="required-alone"),
    pytest.param("type=ssh,id=gh,required=false,target=/a.sock",
                 spec(type="ssh", target="/a.sock", id="gh"), id="ssh-id-target"),
    pytest.param("type=cache,target=/c,from=builder,source=/root/.cache",
                 spec(type="cache", target="/c", id="/c", readonly=False, from_="builder", source="/root/.cache"),
                 id="cache-from-source"),
    pytest.param('type=bind,"target=/a,b",source=x', spec(type="bind", target="/a,b", source="x"),
                 id="csv-quoted-field-with-comma"),
    pytest.param('type=bind,"target=/say ""hi""",source=x', spec(type="bind", target='/say "hi"', source="x"),
                 id="csv-doubled-quote"),
    pytest.param("type=bind,target=/x,", None, id="csv-trailing-comma-is-an-empty-field"),
    # -- tmpfs sizes: go-units RAMInBytes, binary multiples ---------------------------------
    pytest.param("type=tmpfs,target=/t,size=100", spec(type="tmpfs", target="/t", readonly=False, size=100),
                 id="size-bytes"),
    pytest.param("type=tmpfs,target=/t,size=64m", spec(type="tmpfs", target="/t", readonly=False, size=64 << 20),
                 id="size-m"),
    pytest.param("type=tmpfs,target=/t,size=1.5GiB", spec(type="tmpfs", target="/t", readonly=False,
                                                          size=int(1.5 * (1 << 30))), id="size-fraction-gib"),
    pytest.param("type=tmpfs,target=/t,size=512 kb", spec(type="tmpfs", target="/t", readonly=False,
                                                          size=512 << 10), id="size-one-space-kb"),
]


@pytest.mark.parametrize("value, expected", PARSED)
def test_parse_mount(value, expected):
    if expected is None:                       # refused: see REFUSED for the message
        with pytest.raises(MountError, match="invalid field '' must be a key=value pair"):
            parse_mount(value)
        return
    assert parse_mount(value) == expected


def test_ssh_default_target_is_numbered():
    assert parse_mount("type=ssh", ssh_index=2).target == "/run/buildkit/ssh_agent.2"


REFUSED = [
    # (value, message, a piece of the hint or None)
    pytest.param("type=bnd,target=/x", 'unsupported mount type "bnd"', "did you mean bind?", id="type"),  # 20.10
    pytest.param("type=bind,tagret=/x", "unexpected key 'tagret' in 'tagret=/x'", "did you mean target?",
                 id="key"),                                                                              # 20.10
    pytest.param("type=bind,Tagret=/x", "unexpected key 'tagret' in 'Tagret=/x'", "did you mean target?",
                 id="key-lowercased-in-message"),
    pytest.param("type=cache,target=/x,sharing=lock", 'unsupported sharing value "lock"',
                 "did you mean locked?", id="sharing"),                                                  # 20.10
    pytest.param("type=bind,target=/x,mode=0700", 'mode not allowed for "bind" type mounts', None,
                 id="mode-on-bind"),                                                                     # 20.10
    pytest.param("type=tmpfs,target=/x,uid=1", 'uid not allowed for "tmpfs" type mounts', None,
                 id="uid-on-tmpfs"),
    pytest.param("type=cache,target=/x,mode=abc", "invalid value abc for mode", "octal", id="mode-not-octal"),  # 20.10
    pytest.param("type=cache,target=/x,mode=0o755", "invalid value 0o755 for mode", "octal",
                 id="mode-no-go-prefix"),                                                                # 20.10
    pytest.param("type=cache,target=/x,mode=+755", "invalid value +755 for mode", "octal", id="mode-sign"),   # 20.10
    pytest.param("type=cache,target=/x,mode=0777777777777", "invalid value 0777777777777 for mode", "octal",
                 id="mode-over-32-bits"),                                                                # 20.10
    pytest.param("type=cache,target=/x,uid=-1", "invalid value -1 for uid", None, id="uid-negative"),    # 20.10
    pytest.param("type=cache,target=/x,gid=1.5", "invalid value 1.5 for gid", None, id="gid-not-integer"),
    pytest.param("type=cache,target=/x,uid=\u0661", "invalid value \u0661 for uid", None,
                 id="uid-non-ascii-digit"),                 # Python's int() takes it, Go's ParseUint does not
    pytest.param("type=secret", "invalid secret mount. one of source, target required", "usage:",
                 id="secret-without-id"),                                                                # 20.10
    pytest.param("type=secret,id=s,source=s", "both source and id can't be set", None,
                 id="secret-source-and-id"),                                                             # 20.10
    pytest.param("type=secret,id=s,from=x", "secret mount should not have a from", None,
                 id="secret-from"),                                                                      # 20.10
    pytest.param("type=secret,id=s,sharing=locked", "invalid cache sharing set for secret mount", None,
                 id="secret-sharing"),                                                                   # 20.10
    pytest.param("type=bind,target=/x,sharing=shared", "invalid cache sharing set for bind mount", None,
                 id="bind-sharing"),
    pytest.param("type=cache,target=/x,required", "unexpected key 'required' for mount type 'cache'", None,
                 id="required-on-cache"),                                                                # 20.10
    pytest.param("type=bind,target=/x,required=yes", "unexpected key 'required' for mount type 'bind'", None,
                 id="required-type-checked-before-value"),                                               # 20.10
    pytest.param("required,type=secret,id=zz", "unexpected key 'required' for mount type 'bind'", None,
                 id="required-before-type-is-a-bind-one"),                                               # 20.10
    pytest.param("type=secret,id=s,required=maybe", "invalid value for required: maybe", "true or false",
                 id="required-not-bool"),
    pytest.param("type=bind,target=/x,ro=maybe", "invalid value for ro: maybe", "true or false",
                 id="bool-names-the-key-as-written"),                                                    # 20.10
    pytest.param("type=bind,target=/x,foo", "invalid field 'foo' must be a key=value pair", None,
                 id="bare-unknown-field"),                                                               # 20.10
    pytest.param("type=bind,,target=/x", "invalid field '' must be a key=value pair", None,
                 id="empty-field"),                                                                      # 20.10
    pytest.param("type=ssh,source=x", "ssh does not support source", None, id="ssh-source"),             # 20.10
    pytest.param("type=tmpfs,target=/x,from=busybox", "tmpfs mount should not have a from", None,
                 id="tmpfs-from"),                     # docker 20.10's dockerd panics on this one
    pytest.param("type=cache,target=/x,size=1m", "unexpected key 'size' for mount type 'cache'", None,
                 id="size-on-cache"),
    pytest.param("type=tmpfs,target=/x,size=lots", "invalid value for size: lots", "64m", id="size-not-ram"),
    pytest.param("type=tmpfs,target=/x,size=1  m", "invalid value for size: 1  m", "64m",
                 id="size-two-spaces"),
    pytest.param("type=bind,target=/x,env=A", "unexpected key 'env' for mount type 'bind'", None,
                 id="env-on-bind"),
    pytest.param('type=bind,target="/x', 'failed to parse csv mounts: bare " in non-quoted field', None,
                 id="csv-bare-quote"),                                  # Go's csv refuses, Python's takes it
    pytest.param('type=bind,"target=/x', 'failed to parse csv mounts: extraneous or missing " in quoted-field',
                 None, id="csv-unclosed-quote"),
    pytest.param('type=bind,"target=/x"y', 'failed to parse csv mounts: extraneous or missing " in quoted-field',
                 None, id="csv-text-after-quote"),
]


@pytest.mark.parametrize("value, message, hint", REFUSED)
def test_parse_mount_refuses(value, message, hint):
    with pytest.raises(MountError) as e:
        parse_mount(value)
    assert str(e.value).startswith(message)
    if hint is None:
        assert e.value.hint is None or "did you mean" not in e.value.hint
    else:
        assert e.value.hint is not None and hint in e.value.hint


@pytest.mark.parametrize("value", ["default", "none", "host"])
def test_parse_network(value):
    assert parse_network(value) == value


@pytest.mark.parametrize("value, hint", [
    pytest.param("nne", "did you mean none?", id="typo"),
    pytest.param("bridge", "one of: default, none, host", id="docker-run-only-mode"),
    pytest.param("NONE", "did you mean none?", id="case-sensitive"),   # refused as written, as BuildKit
])
def test_parse_network_refuses(value, hint):
    with pytest.raises(MountError) as e:
        parse_network(value)
    assert str(e.value) == f'unsupported network mode "{value}"'
    assert hint in (e.value.hint or "")


def test_parse_security():
    assert parse_security("sandbox") == "sandbox"
    assert parse_security("insecure") == "insecure"      # the parser and the handler refuse it
    with pytest.raises(MountError, match='unsupported security mode "sandbx"') as e:
        parse_security("sandbx")
    assert "did you mean sandbox?" in (e.value.hint or "")


# -- the errors as a Buildfile shows them -----------------------------------------------------
FROM = "FROM pbtest/busybox:base\n"

BUILDFILE_ERRORS = [
    # (text, line, column, message, did-you-mean or hint line); the caret sits under COLUMN
    pytest.param(FROM + "RUN --mount=type=bnd,target=/x true\n", 2, 13, "--mount: unsupported mount type \"bnd\"",
                 "did you mean bind?", id="type-caret-at-field"),
    pytest.param(FROM + "RUN --mount=type=cache,tagret=/x true\n", 2, 24,
                 "--mount: unexpected key 'tagret' in 'tagret=/x'", "did you mean target?", id="key-caret-at-field"),
    pytest.param(FROM + "RUN  --network=nne  true\n", 2, 16, "--network: unsupported network mode \"nne\"",
                 "did you mean none?", id="network-caret-at-value"),
    pytest.param(FROM + "RUN --security=insecure true\n", 2, 5, "--security: --security=insecure is not allowed",
                 "use --security=sandbox", id="security-insecure-refused"),
    pytest.param(FROM + "RUN --mount=type=cache,target=/x,sharing=privat true\n", 2, 34,
                 "--mount: unsupported sharing value \"privat\"", "did you mean private?", id="sharing"),
    pytest.param(FROM + "RUN --mount=type=cache,target=/x \\\n    --mount=type=cache,target=/y,mode=9 true\n", 3, 34,
                 "--mount: invalid value 9 for mode", "octal", id="second-flag-on-continuation-line"),
    pytest.param(FROM + "RUN --mount=type=secret,id=s,required=maybe true\n", 2, 30,
                 "--mount: invalid value for required: maybe", "true or false", id="bool"),
    pytest.param(FROM + "ARG X=a\nRUN --mount=type=bind,from=$X,target=/x true\n", 3, 5,
                 "--mount: 'from' doesn't support variable expansion, define alias stage instead", None,
                 id="from-with-variable"),
    pytest.param(FROM + "RUN --mnt=type=bind,target=/x true\n", 2, 5, "unknown flag: --mnt", "did you mean --mount?",
                 id="unknown-flag"),
]


@pytest.mark.parametrize("text, line, column, message, hint", BUILDFILE_ERRORS)
def test_buildfile_error(text, line, column, message, hint, session_store, tmp_path):
    built = build(session_store, make_context(tmp_path / "ctx"), buildfile=text, check=False)
    assert built.proc.returncode == 2, built.proc.stderr
    err = built.proc.stderr
    assert f"Buildfile:{line}:{column}: {message}" in err, err
    source_line = text.splitlines()[line - 1]
    assert f"\n    {source_line}\n    {' ' * (column - 1)}^\n" in err, err
    if hint is not None:
        assert hint in err
    assert "Step 2/" not in built.proc.stdout, "a parse error stops the build before any step"


HANDLER_ERRORS = [
    # values with variables are checked once expanded, at the flag, with the expanded value
    pytest.param(FROM + "ARG T=bnd\nRUN --mount=type=$T,target=/x true\n", 3, 5,
                 '--mount=type=bnd,target=/x: unsupported mount type "bnd"', "did you mean bind?",
                 id="expanded-type"),
    pytest.param(FROM + "ENV NET=nothing\nRUN --network=$NET true\n", 3, 5,
                 '--network=nothing: unsupported network mode "nothing"', "one of: default, none, host",
                 id="expanded-network"),
    # no target and WORKDIR / (BuildKit: the target is Join("/", workdir, "") = "/")
    pytest.param(FROM + "RUN --mount=type=bind true\n", 2, 5, '--mount=type=bind: invalid mount target "/"',
                 "target=PATH", id="no-target-at-root"),
    pytest.param(FROM + "WORKDIR /w\nRUN --mount=type=cache,target=.. true\n", 3, 5,
                 '--mount=type=cache,target=..: invalid mount target "/"', "target=PATH",
                 id="relative-target-up-to-root"),
]


@pytest.mark.parametrize("text, line, column, message, hint", HANDLER_ERRORS)
def test_handler_error(text, line, column, message, hint, session_store, tmp_path):
    built = build(session_store, make_context(tmp_path / "ctx"), buildfile=text, check=False)
    assert built.proc.returncode == 2, built.proc.stderr
    assert f"Buildfile:{line}:{column}: {message}" in built.proc.stderr, built.proc.stderr
    assert hint in built.proc.stderr
    assert f"\n    {text.splitlines()[line - 1]}\n" in built.proc.stderr


def test_bind_without_target_is_on_the_workdir(session_store, tmp_path):
    """BuildKit joins a missing target to WORKDIR: under WORKDIR /app the context is on /app."""
    ctx = make_context(tmp_path / "ctx", {"f.txt": "x\n"})
    built = build(session_store, ctx, "--no-cache",
                  buildfile=FROM + "WORKDIR /app\nRUN --mount=type=bind ls /app\n")
    assert "[3/3] f.txt" in built.proc.stdout
