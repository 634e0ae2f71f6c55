#!/usr/bin/env bash
# Writes the context's payload.bin (4 MiB, the same bytes every time) so the
# repository does not carry it. Usage: make-payload.sh [DIR]
set -eu
dir=${1:-$(dirname "$0")}
# (yes ends with SIGPIPE when head has enough: no pipefail here.)
yes 'tsbuild chmod-copyup payload' | head -c 4194304 > "$dir/payload.bin"
[ "$(stat -c %s "$dir/payload.bin")" = 4194304 ]
