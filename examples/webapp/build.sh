#!/usr/bin/env bash
# Builds examples/webapp from nothing on a fresh machine (as root): installs what it needs,
# makes the busybox base image locally and imports it, builds the app, prints its history.
# No registry is used.  The store is $PYBUILD_ROOT (default /var/lib/pybuild).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bash "$repo/.ci/install" --minimal
pybuild="$repo/.venv/bin/pybuild"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh "$here/make-base.sh" "$tmp/base.tar"
"$pybuild" import "$tmp/base.tar" example/busybox:latest
"$pybuild" build -f "$here/Buildfile" -t webapp "$here"
"$pybuild" history webapp
