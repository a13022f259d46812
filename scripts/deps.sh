#!/usr/bin/env bash
# Installs what berth needs to build, run and be tested on a fresh Debian
# machine. Sourced by setup.sh and test.sh; safe to run again.
set -euo pipefail

# build: pkg-config + libseccomp-dev (libcontainer's seccomp support),
#        gcc + libc6-dev (ring, the TLS crypto provider, compiles C)
# run:   busybox-static (the project's base image), util-linux (unshare,
#        nsenter for the test harness), iproute2 (ip), nftables (nft: NAT and
#        filtering for bridge networks), tini (tini-static is
#        what --init runs), procps (ps, for `top`)
BERTH_APT_PACKAGES=(pkg-config libseccomp-dev gcc libc6-dev busybox-static util-linux iproute2 nftables tar ca-certificates tini procps)

berth_install_deps() {
  local missing=()
  for p in "${BERTH_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      echo "cargo is required (a Rust toolchain of 1.85 or newer, e.g. from rustup)" >&2
      return 1
    fi
  fi
}
