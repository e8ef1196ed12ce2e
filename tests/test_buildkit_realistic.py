"""Today's Dockerfiles (issue 11), busybox-based, in the style of public ones (awesome-compose's
app images, moby's own multi-stage Dockerfiles): each builds with pybuild and matches docker
20.10's BuildKit — the rootfs after every step, the config, each RUN's output and what the
image prints when run (tests/buildkitdiff.py).  Heredocs are BuildKit-era syntax docker
20.10's frontend lacks, so those files give docker the same steps spelled with printf
(``docker_text``); everything else is the very same file."""

from __future__ import annotations

import pytest
from buildfixtures import File
from buildkitdiff import Case, build_both, start_docker

# a "package index" the install step reads from the context, as pip reads a wheelhouse
WHEELS = {"wheels/flask-2.0.txt": "flask 2.0\n", "wheels/redis-4.1.txt": "redis 4.1\n",
          "wheels/gunicorn-20.1.txt": "gunicorn 20.1\n"}

PYTHON_TEXT = """\
FROM pbtest/busybox:base
WORKDIR /app
ENV PIP_CACHE=/root/.cache/pip
# the dependency install: requirements bound (not copied), downloads kept in a cache mount
RUN --mount=type=cache,target=/root/.cache/pip \\
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \\
    --mount=type=bind,source=wheels,target=/wheels \\
    mkdir -p /app/site-packages && \\
    for pkg in $(cat /tmp/requirements.txt); do \\
      if [ -e "$PIP_CACHE/$pkg" ]; then echo "cached $pkg"; \\
      else echo "download $pkg" && cp /wheels/$pkg.txt "$PIP_CACHE/$pkg"; fi; \\
      cp "$PIP_CACHE/$pkg" /app/site-packages/; \\
    done
COPY app.py .
RUN --network=none sh app.py --selftest
EXPOSE 8000
CMD ["sh", "app.py"]
"""

PYTHON_APP = Case(
    text=PYTHON_TEXT,
    docker_text=PYTHON_TEXT.replace("RUN --network=none ", "RUN "),
    context={"requirements.txt": "flask-2.0\nredis-4.1\ngunicorn-20.1\n", **WHEELS,
             "app.py": "echo serving with $(ls /app/site-packages | tr '\\n' ' ')\n"
                       "if [ \"$1\" = --selftest ]; then echo selftest ok; fi\n"})

GO_MULTI_STAGE = Case(
    text="""\
FROM pbtest/busybox:base AS builder
WORKDIR /src
RUN --mount=type=bind,target=. \\
    --mount=type=cache,target=/root/.cache/go-build \\
    mkdir -p /out && \\
    cat cmd/main.go > /out/server && chmod 755 /out/server && \\
    echo "build cache: $(ls /root/.cache/go-build | wc -l) entries" && \\
    touch /root/.cache/go-build/obj-main

FROM pbtest/busybox:base AS test
RUN --mount=type=bind,from=builder,source=/out,target=/in \\
    sh /in/server --version > /test-report

FROM pbtest/busybox:base
COPY --from=test /test-report /usr/share/doc/test-report
RUN --mount=type=bind,from=builder,source=/out,target=/in cp /in/server /usr/local-server
USER 1000
ENTRYPOINT ["sh", "/usr/local-server"]
CMD ["--version"]
""",
    context={"cmd/main.go": "echo server v1.2 \"$@\"\n", "go.mod": "module example.com/server\n",
             ".dockerignore": "*.md\n", "README.md": "not in the context\n"})

NODE_WITH_SECRET = Case(
    text="""\
FROM pbtest/busybox:base
WORKDIR /usr/src/app
COPY package.json ./
# a private registry token for the install only, never in the image
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc \\
    --mount=type=cache,target=/root/.npm,sharing=locked \\
    grep -q '^//registry.example/:_authToken=' /root/.npmrc && \\
    mkdir node_modules && echo installed > node_modules/.done && \\
    echo "token bytes: $(wc -c < /root/.npmrc)"
RUN ls -a /root; test ! -e /root/.npmrc && echo no token left
CMD ["cat", "node_modules/.done"]
""",
    context={"package.json": File('{"name": "app", "version": "1.0.0"}\n', 0o600, (1000, 1000))},
    secrets={"npmrc": "//registry.example/:_authToken=npm_0123456789abcdefghij\n"})

HEREDOCS = Case(
    text="""\
FROM pbtest/busybox:base
RUN <<EOF
set -e
mkdir -p /etc/app
echo "mode=production" > /etc/app/app.conf
EOF
COPY <<EOF /usr/local-entrypoint.sh
#!/bin/sh
echo "config: $(cat /etc/app/app.conf)"
EOF
RUN --mount=type=tmpfs,target=/tmp/work <<EOF
chmod 755 /usr/local-entrypoint.sh
echo scratch > /tmp/work/x
ls /tmp/work
EOF
CMD ["/usr/local-entrypoint.sh"]
""",
    docker_text="""\
FROM pbtest/busybox:base
RUN set -e; mkdir -p /etc/app; echo "mode=production" > /etc/app/app.conf
RUN printf '#!/bin/sh\\necho "config: $(cat /etc/app/app.conf)"\\n' > /usr/local-entrypoint.sh
RUN --mount=type=tmpfs,target=/tmp/work chmod 755 /usr/local-entrypoint.sh; echo scratch > /tmp/work/x; \\
    ls /tmp/work
CMD ["/usr/local-entrypoint.sh"]
""")

TESTS_OFFLINE = Case(
    text="""\
FROM pbtest/busybox:base AS base
WORKDIR /app
COPY . .

FROM base AS test
# the test suite must not reach the network: only loopback is there
RUN --network=none --mount=type=cache,target=/app/.pytest_cache \\
    sh run-tests.sh && echo "runs: $(cat /app/.pytest_cache/runs)"

FROM base
COPY --from=test /app/report.txt /app/report.txt
RUN --network=none cat /app/report.txt
CMD ["cat", "/app/report.txt"]
""",
    docker_text="""\
FROM pbtest/busybox:base AS base
WORKDIR /app
COPY . .

FROM base AS test
RUN --mount=type=cache,target=/app/.pytest_cache \\
    sh run-tests.sh && echo "runs: $(cat /app/.pytest_cache/runs)"

FROM base
COPY --from=test /app/report.txt /app/report.txt
RUN cat /app/report.txt
CMD ["cat", "/app/report.txt"]
""",
    context={"run-tests.sh": "echo $(( $(cat .pytest_cache/runs 2>/dev/null || echo 0) + 1 )) > .pytest_cache/runs\n"
                             "ifaces=$(cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' | tr '\\n' ' ')\n"
                             "echo \"interfaces: $ifaces\" | tee report.txt\n"
                             "wget -q -T 1 -O- http://127.0.0.1:9/ 2>/dev/null || echo offline >> report.txt\n",
             "src/lib.sh": "echo lib\n"})

CASES = {"python-app-cache-and-bind": PYTHON_APP, "go-multi-stage-bind-from": GO_MULTI_STAGE,
         "node-secret": NODE_WITH_SECRET, "heredocs": HEREDOCS, "tests-offline": TESTS_OFFLINE}


@pytest.fixture(scope="module")
def docker(session_store, tmp_path_factory):
    daemon = start_docker(session_store, tmp_path_factory.mktemp("bkreal"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.mark.parametrize("name", sorted(CASES))
def test_builds_as_buildkit(name, docker, store_root, tmp_path):
    ours, theirs = build_both(docker, store_root, tmp_path, name, CASES[name])
    assert ours.outputs == theirs.outputs, f"--- pybuild:\n{ours.output}\n--- BuildKit:\n{theirs.output}"
    assert ours.outputs, "the file's RUN steps print what they did"
    ours_steps, theirs_steps = ours.steps(), theirs.steps()
    assert len(ours_steps) == len(theirs_steps)
    for n, (a, b) in enumerate(zip(ours_steps, theirs_steps), start=2):
        assert a == b, f"rootfs after history entry {n}"
    assert ours.config() == theirs.config()
    assert ours.run == theirs.run and "exit 0" in ours.run
