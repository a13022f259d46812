#!/usr/bin/env bash
# One command from a fresh machine to a first container: installs packages,
# builds berth in release mode, installs it to /usr/local/bin, starts the
# daemon, creates the busybox image and runs a container that says hello.
# Run as root (berth creates namespaces, cgroups and mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
if [ "$(id -u)" != 0 ]; then
  echo "run as root: sudo $0" >&2
  exit 1
fi
berth_install_deps

echo "building berth (release)..."
cargo build --release --locked -p berth
install -m 0755 target/release/berth /usr/local/bin/berth
# the shim's steady state, found beside berth
install -m 0755 target/release/berth-shim /usr/local/bin/berth-shim

sock=/run/berth/berth.sock
if ! berth -H "unix://$sock" version >/dev/null 2>&1; then
  echo "starting berth daemon (log: /var/log/berth.log)..."
  mkdir -p /run/berth
  nohup setsid /usr/local/bin/berth daemon >>/var/log/berth.log 2>&1 </dev/null &
  for _ in $(seq 1 100); do
    berth version >/dev/null 2>&1 && break
    sleep 0.1
  done
  berth version >/dev/null || { echo "the daemon did not start; see /var/log/berth.log" >&2; exit 1; }
fi

if ! berth image inspect busybox:latest >/dev/null 2>&1; then
  echo "creating busybox:latest from Debian's busybox-static..."
  tar=$(mktemp --suffix=.tar)
  scripts/make-busybox-rootfs.sh "$tar"
  berth import \
    -c 'CMD ["sh"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tar" busybox:latest >/dev/null
  rm -f "$tar"
fi

berth run --rm busybox echo "Hello from berth: your first container ran."
