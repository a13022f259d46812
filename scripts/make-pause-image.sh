#!/usr/bin/env bash
# The pause image stand-in for CRI tests, offline: a static build of
# scripts/images/pause.c as /pause, in a rootfs tar. Import it with
#   docker import -c 'ENTRYPOINT ["/pause"]' -c 'USER 65535:65535' OUT NAME
#   scripts/make-pause-image.sh OUT.tar
set -euo pipefail
out=${1:?usage: make-pause-image.sh OUT.tar}
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
gcc -static -Os -s -o "$root/pause" "$here/images/pause.c"
tar -C "$root" --owner=0 --group=0 --numeric-owner -cf "$out" pause
