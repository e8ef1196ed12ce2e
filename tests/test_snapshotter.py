"""The copy snapshotter makes the layers overlay makes: every conformance case and a table of
the hard cases, built both ways as root with the same epoch, give the same diffIDs; ``auto``
takes it, with one line of notice, where an overlay cannot be mounted.

The rootless variants are in test_rootless.py; the diff itself, row by row, in test_snapshot.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from buildfixtures import Link, build, make_context
from conftest import conformance_dir, pybuild
from layerfixtures import needs_root, overlay
from variantfixtures import EPOCH, build_as_root, case_context

from builder.build import snapshotter
from builder.build.log import BuildLog
from builder.errors import UsageError
from builder.store.store import Store

CASES = sorted(p.name for p in conformance_dir().iterdir() if (p / "Buildfile").is_file())
BASE = "FROM pbtest/busybox:base\n"

pytestmark = needs_root


@pytest.mark.parametrize("case", CASES)
def test_conformance_case_copy_makes_overlays_layers(case, session_store, overlay_reference, tmp_path):
    want = overlay_reference.conformance(case)
    ctx, buildfile = case_context(case, tmp_path / "ctx")
    got = build_as_root(session_store, ctx, buildfile, f"copy/{case}", "copy")
    assert got == want


# Each row: a Buildfile body after FROM pbtest/busybox:base (the conformance base: /opt/data
# holds a hardlink pair, /home/user is 1000:1000), built with overlay and with copy.
DIFFERENTIAL = [
    # a hardlinked lower file written through one name: overlay (index=off) copies that name up alone
    pytest.param("RUN echo x >> /opt/data/hardlink", id="write-one-name-of-a-lower-hardlink"),
    # links a step made are split before the next step writes through one of them
    pytest.param("RUN echo a > /a && ln /a /b\nRUN echo more >> /a", id="write-one-name-of-a-new-hardlink"),
    # removing one name of a pair leaves the other alone (its link count is not a change)
    pytest.param("RUN rm /opt/data/hardlink", id="remove-one-name-of-a-hardlink"),
    pytest.param("RUN echo a > /a && ln /a /b\nRUN rm /b", id="remove-a-new-hardlink"),
    # the same mode again is a copy-up in overlay: the ctime says so
    pytest.param("RUN chmod 644 /etc/group", id="chmod-file-to-same-mode"),
    pytest.param("RUN chmod 755 /etc", id="chmod-dir-to-same-mode"),
    pytest.param("RUN touch -d '2020-01-01 00:00:00' /etc/group", id="touch-to-same-mtime"),
    # same size, new content, in the same second
    pytest.param("RUN printf 'doc x\\n' > /usr/share/doc/pkg-a/README", id="same-size-rewrite"),
    # overlay (redirect_dir off) makes mv of a lower dir a copy and a delete
    pytest.param("RUN mv /usr/share/doc /usr/share/doc2", id="rename-a-lower-dir"),
    # deleted and made again with the same name and content: opaque, although ext4 reuses the inode
    pytest.param("RUN rm -rf /var/lib/app && mkdir -p /var/lib/app && echo state > /var/lib/app/state",
                 id="dir-recreated-identical"),
    pytest.param("RUN rm -rf /opt && mkdir -p /opt/data && echo x > /opt/data/y", id="opaque-above-a-new-dir"),
    pytest.param("RUN mkdir -p /n/m && echo 1 > /n/m/f\nRUN rm -rf /n/m\nRUN rm -rf /n && mkdir /n",
                 id="delete-what-an-earlier-step-made"),
    pytest.param("RUN ln -sfn /tmp /opt/data/link-to-sub", id="symlink-retargeted"),
    pytest.param("RUN rm /etc/sources.list && ln -s group /etc/sources.list", id="file-replaced-by-symlink"),
    pytest.param("RUN mkfifo /p && ln -s /p /q && ln -s q /r && mkdir /empty", id="fifo-symlinks-empty-dir"),
    pytest.param("RUN chown -R 1000:1000 /opt/data && rm /opt/data/sub/file", id="chown-tree-and-delete"),
    # a heredoc script is written into the root for the RUN and gone before the diff
    pytest.param("RUN <<EOT\n#!/bin/sh\necho hi > /hd\nEOT", id="heredoc-script"),
    # a mount target that did not exist stays as BuildKit leaves it, the cache's files do not
    pytest.param("RUN --mount=type=cache,target=/var/cache/x echo hi > /var/cache/x/f && mkdir -p /made",
                 id="run-mount-stub"),
    pytest.param("WORKDIR /srv/a/b\nCOPY . /srv/a/b/\nCOPY --chown=1000:1000 . /srv/c/", id="workdir-and-copies"),
    # an image without /etc, /proc, /dev, /sys: the RUN's mount points are made and taken away
    pytest.param("FROM scratch\nCOPY --from=pbtest/busybox:base /bin/busybox /bin/busybox\n"
                 "RUN [\"/bin/busybox\", \"mkdir\", \"/x\"]\n"
                 "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox echo hi > /etc/motd\"]\n"
                 "COPY file.txt /z",
                 id="image-without-mount-points"),
    # /etc/hosts a symlink in the image: moved aside for the RUN's placeholder, and back
    pytest.param("COPY etc/ /etc/\nRUN echo x > /x\nRUN echo y > /etc/y", id="hosts-a-symlink"),
    # a second stage: the working root is made again from another base
    pytest.param("RUN echo one > /one\nFROM pbtest/busybox:base\nCOPY --from=0 /one /two\n"
                 "RUN cat /two >> /etc/group", id="two-stages"),
]


@pytest.mark.parametrize("body", DIFFERENTIAL)
def test_copy_makes_overlays_layers(body, session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx", {"file.txt": "hello\n", "sub/x": "x\n", "etc/hosts": Link("/run/hosts")})
    text = body if body.startswith("FROM") else BASE + body
    buildfile = tmp_path / "Buildfile"
    buildfile.write_text(text + "\n")
    want = build_as_root(session_store, ctx, buildfile, "diff/overlay", "overlay")
    got = build_as_root(session_store, ctx, buildfile, "diff/copy", "copy")
    assert want.ok, want.error
    assert got == want


def test_copy_of_lower_hardlinks_is_a_known_difference(session_store, tmp_path):
    """Overlay's merged view shows a lower hardlink pair as one inode, so a copy of it (here
    mv of a lower dir, which overlay turns into cp -a and rm) keeps the link; the working root
    holds the pair as two files (so that a write through one name never shows through the
    other, as overlay has it), and the copy has two files.  docs/rootless.md says so."""
    ctx = make_context(tmp_path / "ctx")
    text = BASE + "RUN mv /opt/data /opt/data2\n"
    lines = {}
    for name in ("overlay", "copy"):
        b = build(session_store, ctx, "--no-cache", "--snapshotter", name, buildfile=text, tag=f"hl/{name}",
                  env={"SOURCE_DATE_EPOCH": EPOCH})
        lines[name] = [line for line in b.last_layer() if "sub/file" in line]
    assert lines["overlay"] == ["h 0644 0:0 opt/data2/sub/file -> opt/data2/hardlink"]
    assert lines["copy"][0].startswith("f 0644 0:0 5 ")


def test_a_rebuild_continues_the_working_root_from_cached_layers(session_store, tmp_path):
    """Steps 2-3 from the cache, step 4 runs: the working root is made from the cached layers
    (and step 5 goes on from it), with the layers overlay makes."""
    ctx = make_context(tmp_path / "ctx")
    steps = "RUN echo 1 > /one\nRUN rm /etc/group && mkdir /etc/group\n"
    first = build(session_store, ctx, "--snapshotter", "copy", buildfile=BASE + steps + "RUN echo a > /x\n",
                  tag="inc/copy", env={"SOURCE_DATE_EPOCH": EPOCH})
    assert "Using cache" not in first.proc.stdout
    text = BASE + steps + "RUN echo b > /x\nRUN rm -rf /etc/group\n"
    again = build(session_store, ctx, "--snapshotter", "copy", buildfile=text, tag="inc/copy",
                  env={"SOURCE_DATE_EPOCH": EPOCH})
    assert again.proc.stdout.count("Using cache") == 2
    want = build(session_store, ctx, "--no-cache", "--snapshotter", "overlay", buildfile=text, tag="inc/overlay",
                 env={"SOURCE_DATE_EPOCH": EPOCH})
    assert again.config()["rootfs"] == want.config()["rootfs"]


def test_auto_takes_copy_where_overlay_cannot_be_mounted(base_tar, tmp_path, overlay_reference):
    """A store on overlayfs (as inside a container): an overlay's upper dir cannot be there, so
    the build says so in one line and the copy snapshotter makes the reference's layers."""
    (tmp_path / "ovl").mkdir()
    with overlay(tmp_path / "ovl") as ov:
        root = ov.merged / "store"
        pybuild("import", str(base_tar), "pbtest/busybox:base", root=root)
        for case in ("p01-run-creates", "p10-add-file", "p20-config-instructions"):
            ctx, buildfile = case_context(case, tmp_path / case)
            b = build(root, ctx, buildfile=buildfile, tag=case, check=False, env={"SOURCE_DATE_EPOCH": EPOCH})
            assert b.ok, b.proc.stderr
            notices = [line for line in b.proc.stderr.splitlines() if "snapshotter" in line]
            assert len(notices) == 1 and "overlay cannot be mounted here" in notices[0], b.proc.stderr
            assert tuple(b.config()["rootfs"]["diff_ids"]) == overlay_reference.conformance(case).diff_ids
        Store(root)          # opened once more, so nothing of the builds is left in tmp/ …
        assert not any((root / "tmp").iterdir())
    # … and the overlay context manager unmounted it


def test_choose_follows_the_probe(monkeypatch, tmp_path):
    store = Store(tmp_path / "store")
    warned: list[str] = []
    log = BuildLog(quiet=True)
    monkeypatch.setattr(log, "warn", warned.append)
    monkeypatch.delenv(snapshotter.ENV, raising=False)
    monkeypatch.setattr(snapshotter, "overlay_problem", lambda store: "")
    assert snapshotter.choose(store, None, lambda: tmp_path, log).name == "overlay"
    monkeypatch.setattr(snapshotter, "overlay_problem", lambda store: "mount overlay: Operation not permitted")
    assert snapshotter.choose(store, None, lambda: tmp_path, log).name == "copy"
    assert warned == ["overlay cannot be mounted here (mount overlay: Operation not permitted): using the copy "
                      "snapshotter, which makes the same layers, more slowly"]
    assert snapshotter.choose(store, "overlay", lambda: tmp_path, log).name == "overlay"   # no probe asked
    monkeypatch.setenv(snapshotter.ENV, "copy")
    assert snapshotter.choose(store, None, lambda: tmp_path, log).name == "copy"
    assert snapshotter.snapshotter_in_use(store) == "copy (requested)"
    monkeypatch.setenv(snapshotter.ENV, "zfs")
    with pytest.raises(UsageError, match="unknown snapshotter 'zfs'"):
        snapshotter.requested(None)


def test_the_probe_finds_overlay_here(tmp_path):
    """On the CI machine (root, ext4) overlay works: the default stays overlay."""
    store = Store(tmp_path / "store")
    assert snapshotter.overlay_problem(store) == ""
    assert snapshotter.snapshotter_in_use(store) == "overlay"
    assert not any((store.root / "tmp").iterdir())


def test_a_bad_snapshotter_name_is_a_usage_error(session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    b = build(session_store, ctx, buildfile=BASE + "RUN true\n", check=False, env={"PYBUILD_SNAPSHOTTER": "zfs"})
    assert b.proc.returncode == 2
    assert "PYBUILD_SNAPSHOTTER='zfs': use one of auto, overlay, copy" in b.proc.stderr


def test_a_failed_step_leaves_nothing_and_the_next_build_starts_clean(session_store, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    bad = build(session_store, ctx, "--snapshotter", "copy", buildfile=BASE + "RUN echo x > /x && exit 3\n",
                check=False)
    assert bad.proc.returncode == 1 and "exit code 3" in bad.proc.stderr
    assert not [p for p in Path(session_store, "tmp").iterdir() if p.name.startswith("live-")]
    good = build(session_store, ctx, "--snapshotter", "copy", buildfile=BASE + "RUN test ! -e /x\n")
    assert good.ok
