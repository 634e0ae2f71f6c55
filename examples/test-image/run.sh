#!/usr/bin/env bash
# The main job, offline: make a busybox base image, build the seeds' test-image
# on it, show its layers, run it. Store root: $TSBUILD_ROOT or a temp dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=${TSBUILD_ROOT:-$(mktemp -d /tmp/tsbuild-example-XXXXXX)}
tar=$(mktemp /tmp/busybox-rootfs-XXXXXX.tar)
trap 'rm -f "$tar"' EXIT
bash examples/busybox-rootfs.sh "$tar"
bin/tsbuild import --root "$root" "$tar" busybox:local
bin/tsbuild build --root "$root" --progress plain -t test-image examples/test-image
bin/tsbuild history --root "$root" test-image
bin/tsbuild run --root "$root" test-image
echo "store: $root (a dockerd data root: dockerd --data-root $root …)"
