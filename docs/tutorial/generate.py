#!/usr/bin/env python3
"""Regenerates docs/tutorial.md by running every command in it for real.

    sudo python3 docs/tutorial/generate.py [--output docs/tutorial.md]

It makes a fresh store under /tmp/pybuild-tutorial, builds examples/webapp on a busybox base
made from Debian's busybox-static, runs the article's experiments, and writes each command
with the output it printed.  Needs root, busybox and pybuild (from this checkout).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORK = Path("/tmp/pybuild-tutorial")

INTRO = """# Tutorial: the layers of an image, one experiment at a time

An image's root filesystem is a stack of read-only layers; a container adds one writable layer
on top, and a union mount shows the stack as one tree. Writing a file that lives in a lower
layer *copies it up* into the writable layer; deleting one leaves a *whiteout* there; a
history lists how each layer was made. This tutorial shows every one of those facts with
pybuild, on the example in `examples/webapp`.

All the output below is real: `docs/tutorial/generate.py` ran each command and pasted what it
printed (a test runs the script, so it stays true). Long hashes differ from run to run.
"""

# (heading, prose, commands): each command runs with `sh -c` in WORK, PYBUILD_ROOT set.
STEPS: list[tuple[str, str, list[str]]] = [
    ("1. A base image, made locally",
     "The example starts from a small busybox root filesystem. `pybuild import` turns a rootfs "
     "tarball into a one-layer image, as `docker import` does.",
     ["sh $REPO/examples/webapp/make-base.sh base.tar",
      "pybuild import base.tar example/busybox:latest"]),
    ("2. Build, one layer per step",
     "Each RUN runs chrooted over an overlay union of the layers so far; what it writes lands in "
     "the overlay's upper directory and becomes the new layer. Metadata steps (ENV, EXPOSE, CMD) "
     "only change the config.",
     ["cat $REPO/examples/webapp/Buildfile",
      "pybuild build -t webapp $REPO/examples/webapp"]),
    ("3. How each layer was made",
     "`pybuild history` lists the steps newest first, like `docker history`; `--ids` adds each "
     "layer's diffID (the sha256 of its tar) and chain ID (which names the layer together with "
     "everything below it).",
     ["pybuild history --ids webapp"]),
    ("4. What each layer did",
     "`pybuild layers` counts what every layer added, modified (copied up), deleted (whiteouts) "
     "and hid (opaque directories); `--graph` draws the stack as the union mount sees it.",
     ["pybuild layers webapp", "pybuild layers --graph webapp"]),
    ("5. A file in two layers",
     "The RUN that edited `/etc/motd` copied it up: the file is now in the base layer *and* in "
     "layer 2, and the container sees the upper one. Deleting `/etc/issue` left a whiteout.",
     ["pybuild find webapp motd", "pybuild find webapp issue"]),
    ("6. The layers on disk, as AUFS kept them",
     "`pybuild export-layers` writes the layers as docker's AUFS driver kept them: one directory "
     "per layer under `diff/`, whiteouts as `.wh.<name>` files, a `layers/` file per layer "
     "naming the ones below it, and `branches` listing the stack top first. Plain `find` now "
     "answers which layers hold a file.",
     ["pybuild export-layers webapp layers-out",
      "find layers-out/diff -iname motd | sed 's|/diff/\\(.\\{12\\}\\)[0-9a-f]*|/diff/\\1…|'",
      "find layers-out/diff -name '.wh.*' | sed 's|/diff/\\(.\\{12\\}\\)[0-9a-f]*|/diff/\\1…|'",
      "sed 's|/diff/\\(.\\{12\\}\\)[0-9a-f]*|/diff/\\1…|' layers-out/branches"]),
    ("7. Experiment: create a file in a container",
     "`pybuild run --keep NAME` keeps the container's writable layer. A new file appears only "
     "there.",
     ["pybuild run --keep c1 webapp sh -c 'echo hello > /var/www/new.html'",
      "pybuild diff c1",
      "cd $PYBUILD_ROOT/containers/c1/upper && find . | sort"]),
    ("8. Experiment: modify a file from a lower layer",
     "Appending to `/etc/passwd`, which lives in lower layers, first copies the whole file up "
     "into the writable layer (with its directory), then changes the copy.",
     ["pybuild run --keep c2 webapp sh -c 'echo guest:x:2000:2000::/tmp:/bin/sh >> /etc/passwd'",
      "pybuild diff c2",
      "ls -l $PYBUILD_ROOT/containers/c2/upper/etc"]),
    ("9. Experiment: delete a file from a lower layer",
     "A lower layer cannot change, so deleting `/var/www/index.html` leaves a whiteout in the "
     "writable layer: overlayfs writes a character device 0:0; in a layer tar (and in AUFS) it "
     "is the file `.wh.index.html`.",
     ["pybuild run --keep c3 webapp rm /var/www/index.html",
      "pybuild diff c3",
      "ls -l $PYBUILD_ROOT/containers/c3/upper/var/www",
      "pybuild commit -m 'index.html deleted' c3 webapp:no-index",
      "pybuild run webapp:no-index ls /var/www"]),
    ("10. Remove the whiteout, and the file comes back",
     "Export the committed image, delete the `.wh.` file from the top layer's directory, and "
     "import the tree again: nothing hides `index.html` any more.",
     ["pybuild export-layers webapp:no-index no-index-out",
      "rm no-index-out/diff/*/var/www/.wh.index.html",
      "pybuild import-layers no-index-out webapp:restored",
      "pybuild run webapp:restored ls /var/www"]),
    ("11. Watch a layer being made",
     "`--explain` shows, for every step, the exact overlay mount, what the kernel left in the "
     "upper directory, the tar entry each became, and the diffID and chain ID arithmetic.",
     ["printf 'FROM example/busybox:latest\\nRUN rm /etc/issue && echo hi > /etc/motd\\n' > Buildfile",
      "pybuild build --explain -t explained ."]),
    ("12. Waste: a chmod copies a file up whole",
     "The copy-up of experiment 8 has a price in images too. A RUN that only changes a lower "
     "file's mode, owner or timestamp still copies the whole file into its layer: the image "
     "stores it twice, and pulling it downloads it twice. `pybuild analyze` gives dive's "
     "numbers (efficiency, wasted bytes: every copy of a path seen in two or more layers), "
     "says why each file is wasted, and `reclaimableBytes` counts what a rewritten Buildfile "
     "saves: every copy but the one the image shows. Here a 2 MB file is copied in, then "
     "made executable.",
     ["mkdir waste && head -c 2000000 /dev/zero > waste/app.bin",
      "printf 'FROM example/busybox:latest\\nCOPY app.bin /opt/app.bin\\nRUN chmod 755 /opt/app.bin\\n' "
      "> waste/Buildfile && cat waste/Buildfile",
      "pybuild build -q -t waste waste",
      "pybuild analyze waste",
      "pybuild analyze --ci waste || echo \"exit code $?\"",
      "printf 'FROM example/busybox:latest\\nCOPY --chmod=755 app.bin /opt/app.bin\\n' > waste/Buildfile "
      "&& cat waste/Buildfile",
      "pybuild build -q -t waste:fixed waste",
      "pybuild analyze --limit 3 waste:fixed",
      "pybuild analyze --ci waste:fixed"]),
    ("13. A cache mount: a faster rebuild, and no layer for it",
     "`RUN --mount=type=cache` (BuildKit's syntax) gives a step a directory that lives in the "
     "store, not in the image: what a step leaves there is there for the next build, and none of "
     "it becomes a layer. Here a step \"downloads\" a package (a 3-second sleep) into the cache "
     "the first time, and finds it there the next time, even with `--no-cache`, which reruns "
     "every step but, as in BuildKit, keeps cache mounts.",
     ["printf 'FROM example/busybox:latest\\nRUN --mount=type=cache,target=/var/cache/dl "
      "sh -c \"test -f /var/cache/dl/pkg && echo found in the cache || "
      "{ sleep 3; echo pkg > /var/cache/dl/pkg; echo downloaded; }; cp /var/cache/dl/pkg /pkg\"\\n' > Buildfile.cache",
      "cat Buildfile.cache",
      "start=$(date +%s); pybuild build --no-cache -f Buildfile.cache -t cached . | grep '^\\['; "
      "echo \"first build: $(( $(date +%s) - start ))s\"",
      "start=$(date +%s); pybuild build --no-cache -f Buildfile.cache -t cached . | grep '^\\['; "
      "echo \"second build: $(( $(date +%s) - start ))s\"",
      "pybuild run cached cat /pkg",
      "pybuild diff cached",
      "pybuild df | tail -3"]),
]


def run(command: str, env: dict[str, str]) -> str:
    proc = subprocess.run(["sh", "-c", command], cwd=WORK, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"tutorial step failed ({proc.returncode}): {command}\n{out}")
    return out.replace(str(WORK), "/tmp/pybuild-tutorial").replace(str(REPO), ".")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(REPO / "docs" / "tutorial.md"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the tutorial runs pybuild, which needs root")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    bindir = WORK / "bin"
    bindir.mkdir()
    launcher = bindir / "pybuild"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} -m builder \"$@\"\n")
    launcher.chmod(0o755)
    env = dict(os.environ, PYBUILD_ROOT=str(WORK / "store"), REPO=str(REPO),
               PYTHONPATH=str(REPO), PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    parts = [INTRO]
    try:
        for heading, prose, commands in STEPS:
            parts.append(f"## {heading}\n\n{prose}\n")
            for command in commands:
                shown = command.replace("$REPO/", "").replace("$REPO", ".")
                out = run(command, env)
                parts.append(f"```console\n$ {shown}\n{out.rstrip()}\n```\n" if out.strip()
                             else f"```console\n$ {shown}\n```\n")
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    Path(args.output).write_text("\n".join(parts))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
