"""Shared fixtures: where the conformance cases live, the busybox base image, a store, and
third-party data in ../shared/fixtures.

Nothing here skips: CI runs as root with every tool installed (.ci/run installs them), so a
missing tool or privilege is a failure with a message that says how to fix it.  The one
exception is data the repository must not hold: tests marked ``shared_fixture`` need
../shared/fixtures beside the checkout; without it they are deselected with one line of
notice, except in CI (CI set), where they always run and a missing ../shared fails them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

# tests/ is on the path only from here on; pybuild and writable_copy are re-exported
from buildfixtures import pybuild, writable_copy  # noqa: E402,F401
from dockerd import require_tool  # noqa: E402


def conformance_dir() -> Path:
    """The conformance cases: the repository's copy (tests/conformance), or $PYBUILD_CONFORMANCE."""
    env = os.environ.get("PYBUILD_CONFORMANCE")
    path = Path(env) if env else REPO / "tests" / "conformance"
    if not (path / "make-base.sh").is_file():
        pytest.fail(f"conformance cases not found at {path} (set PYBUILD_CONFORMANCE)")
    return path


#: The team's shared folder beside the checkout; only ``fixtures/`` of it is used.
SHARED = REPO.parent / "shared"


def shared_fixture(name: str) -> Path:
    """``../shared/fixtures/<name>``: third-party test data that stays outside the repository
    (never copy it in).  Fails when it is missing; tests using it carry the ``shared_fixture``
    marker, so outside CI they are deselected when ../shared/fixtures is absent."""
    path = SHARED / "fixtures" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: tests marked shared_fixture need ../shared/fixtures "
                    f"beside the checkout (outside CI they are deselected when it is absent)")
    return path


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("pybuild's tests need root (overlay mounts, namespaces, chroot); CI runs as root")


_SHARED_DESELECTED = pytest.StashKey[int]()     # how many shared_fixture tests were left out


def pytest_collection_modifyitems(config, items) -> None:
    """Deselect the ``shared_fixture`` tests when ../shared/fixtures is absent, never in CI."""
    needing = [item for item in items if item.get_closest_marker("shared_fixture")]
    if not needing or (SHARED / "fixtures").is_dir() or os.environ.get("CI"):
        return
    config.hook.pytest_deselected(items=needing)
    items[:] = [item for item in items if not item.get_closest_marker("shared_fixture")]
    config.stash[_SHARED_DESELECTED] = len(needing)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    n = config.stash.get(_SHARED_DESELECTED, 0)
    if n:
        terminalreporter.write_line(f"{n} {'tests need' if n != 1 else 'test needs'} ../shared/fixtures "
                                    f"(absent): deselected")


def pytest_sessionfinish(session, exitstatus) -> None:
    """In CI (CI=true) a skipped test is a failure: everything there is root and installable."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and session.exitstatus == 0:
        print(f"\nCI: {skipped} test(s) skipped; nothing may skip in CI", file=sys.stderr)
        session.exitstatus = 1


@pytest.fixture
def root_required() -> None:
    require_root()


@pytest.fixture(scope="session")
def base_tar(tmp_path_factory) -> Path:
    """The conformance base rootfs, made by the cases' own make-base.sh."""
    require_root()
    require_tool("busybox")
    out = tmp_path_factory.mktemp("base") / "base.tar"
    subprocess.run(["sh", str(conformance_dir() / "make-base.sh"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def session_store(tmp_path_factory, base_tar) -> Path:
    """A store shared by the build tests, holding pbtest/busybox:base."""
    root = tmp_path_factory.mktemp("store")
    pybuild("import", str(base_tar), "pbtest/busybox:base", root=root)
    return root


@pytest.fixture(scope="session")
def rootless_user(base_tar):
    """An ordinary user with subordinate ids (tests/rootlessfixtures.py: made if missing and
    removed after the session), whose own default store (~/.local/share/pybuild under its
    temporary HOME) holds pbtest/busybox:base, imported by that user."""
    from rootlessfixtures import make_user, remove_user
    user = make_user()
    try:
        user.pybuild("import", str(user.copy_in(base_tar, "base.tar")), "pbtest/busybox:base")
        yield user
    finally:
        remove_user(user)


@pytest.fixture(scope="session")
def overlay_reference(session_store, tmp_path_factory):
    """Each conformance case built by root over overlay, reproducibly (tests/variantfixtures.py),
    once per session: what the copy snapshotter and rootless builds must match."""
    from variantfixtures import Reference
    return Reference(session_store, tmp_path_factory.mktemp("reference"))


@pytest.fixture
def store_root(tmp_path, base_tar) -> Path:
    """A fresh store of the test's own, holding pbtest/busybox:base."""
    root = tmp_path / "store"
    pybuild("import", str(base_tar), "pbtest/busybox:base", root=root)
    return root


@pytest.fixture
def registry(tmp_path):
    """A real docker-registry on 127.0.0.1 for this test, stopped (by pid) afterwards."""
    from registryd import Registry
    (tmp_path / "reg").mkdir()
    reg = Registry(tmp_path / "reg").start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def docker():
    """A private dockerd (tests/dockerd.py) for the test module, stopped by its pid after it."""
    from dockerd import DockerDaemon
    require_tool("dockerd")
    daemon = DockerDaemon().start()
    try:
        yield daemon
    finally:
        daemon.stop()
