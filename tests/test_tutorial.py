"""docs/tutorial/generate.py still runs, and what it shows is still true."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_tutorial_generator_runs_and_shows_the_experiments(tmp_path):
    out = tmp_path / "tutorial.md"
    proc = subprocess.run([sys.executable, str(REPO / "docs/tutorial/generate.py"), "--output", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    assert text.count("## ") == 13
    for fact in (
        "hidden by layer 2   /etc/motd",                 # the copy-up: motd in two layers
        "deleted   w      in effect           /etc/issue",  # the whiteout in effect
        "/etc/.wh.issue",                                 # as AUFS kept it on disk
        "A      -rw-r--r--   0:0     6      /var/www/new.html",   # create
        "C      -rw-r--r--   0:0     105    /etc/passwd",          # modify (copy-up)
        "D      -            -       -      /var/www/index.html",  # delete
        "0, 0",                                           # the kernel's 0:0 whiteout device
        "cgi-bin\nindex.html",                            # the whiteout removed: the file is back
        "-> etc/.wh.issue",                               # --explain's tar entry
        "[2/2] downloaded",                               # a cache mount: filled by the first build,
        "found in the cache",                             # … found by the second, even with --no-cache
        "A      drwxr-xr-x   0:0     0      /var/cache/dl",   # the mount point stays, empty
        "/var/cache/dl   ",                               # df lists the cache mount
        "/opt/app.bin   metadata-only copy-up (same content) in layer 2",   # analyze says why
        "reclaimableBytes   2000000",                     # what the rewrite saves: one copy
        "FAIL [fail:2 skip:2]\nexit code 1",              # the chmod image fails dive's gates
        "PASS [pass:2 skip:2]",                           # COPY --chmod passes them
    ):
        assert fact in text, fact
