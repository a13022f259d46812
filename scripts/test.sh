#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then
# runs the numbered checks. Run as root: the integration tests create
# namespaces, cgroups and overlay mounts (each test in its own namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
if [ "$(id -u)" != 0 ]; then
  echo "run as root: sudo $0" >&2
  exit 1
fi
berth_install_deps
# the conformance tests' other parts: the docker CLI as an unchanged
# client, Debian's dockerd (save/load interop), skopeo (registry interop),
# curl (the registry protocol tests), openssl (certificates for TLS tests),
# zstd (zstd layer frames), Debian's python3-prometheus-client (a real
# parser for /metrics), systemd's journald and journalctl (the journald
# log driver's receiver), Debian's CNI plugins and the iptables they call
# (the CRI's pods on a CNI network)
test_missing=()
command -v docker >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1 || test_missing+=(docker.io)
command -v skopeo >/dev/null 2>&1 || test_missing+=(skopeo)
command -v curl >/dev/null 2>&1 || test_missing+=(curl)
command -v openssl >/dev/null 2>&1 || test_missing+=(openssl)
command -v zstd >/dev/null 2>&1 || test_missing+=(zstd)
/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || test_missing+=(python3-prometheus-client)
[ -x /lib/systemd/systemd-journald ] && command -v journalctl >/dev/null 2>&1 || test_missing+=(systemd)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/portmap ] || test_missing+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || test_missing+=(iptables)
if [ ${#test_missing[@]} -gt 0 ]; then
  echo "installing for the conformance tests: ${test_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${test_missing[@]}" >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# a build from scratch gains nothing from incremental state, and that state
# is two thirds of target/ (3.5 of 5.4 GB measured): a CI machine with
# little disk ran out of space with it
export CARGO_INCREMENTAL=0
# crictl and critest for the CRI tests (built once, offline)
scripts/cri-tools.sh

echo "== check 1: formatting (cargo fmt --check)"
cargo fmt --all -- --check

echo "== check 2: lints (cargo clippy -D warnings)"
cargo clippy --release --locked --all-targets -- -D warnings

echo "== check 3: unit and integration tests"
log=$(mktemp)
set +e
# build first: the time limit is for hung tests, not for a slow compile
cargo test --release --locked --all-targets --no-run 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || { rm -f "$log"; echo "building the tests failed"; exit "$rc"; }
# a hung test fails the run instead of eating CI's time
timeout --kill-after=30s 25m cargo test --release --locked --all-targets -- --test-threads=2 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '^test result: .* ([0-9]+) passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '^test result: .* ([0-9]+) failed' "$log" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
rm -f "$log"
if [ "$rc" = 0 ]; then
  echo "== check 4: benchmark harness smoke run (bench/run, one run, JSON)"
  if bench/run --no-build --runs 1 --only run-rm-none,lifecycle,pull-200mb,cri-pod-start --json > target/bench-smoke.json \
    && python3 - target/bench-smoke.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
names = [s["name"] for s in d["scenarios"]]
assert names == ["run-rm-none", "lifecycle", "pull-200mb", "cri-pod-start"], names
berth = {s["name"]: s["engines"]["berth"] for s in d["scenarios"]}
assert berth["run-rm-none"]["run-rm-none"]["median"] > 0, berth
assert set(berth["lifecycle"]) == {"create", "start", "stop", "rm"}, berth
assert berth["pull-200mb"]["pull-200mb"]["median"] > 0, berth
assert set(berth["cri-pod-start"]) == {"cri-runp", "cri-create", "cri-start", "cri-pod-start"}, berth
PY
  then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); rc=1
  fi
fi
if [ "$rc" = 0 ]; then
  echo "== check 5: critest against berth's CRI (scripts/critest.sh)"
  # a hung spec fails the check instead of eating CI's time
  if timeout --kill-after=30s 15m scripts/critest.sh --no-build; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); rc=1
  fi
fi
echo "all tests: $passed passed, $failed failed"
exit "$rc"
