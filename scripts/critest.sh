#!/usr/bin/env bash
# critest (cri-tools v1.36.0) against a fresh berth daemon, in namespaces of
# its own: the images come from scripts/make-cri-test-images.sh through
# `berth registry` on 127.0.0.1 as the mirror of registry.k8s.io, gcr.io and
# k8s.gcr.io. Prints Ginkgo's summary of a run focused on [Conformance], of
# the full default suite, of the streaming specs over WebSocket and of the
# network specs with pods on a CNI network, and fails
# when a spec fails that docs/cri.md does not list as a known failure
# (scripts/critest-known-failures.txt).
#   scripts/critest.sh [--conformance-only] [--no-build]
# --no-build: use target/release/berth as it is (scripts/test.sh has just
# built it with the tests; a plain `cargo build` would rebuild much of the
# tree, as its features unify without the tests' dev-dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --inside ]; then
  build=yes
  for a in "$@"; do [ "$a" = --no-build ] && build=no; done
  scripts/cri-tools.sh
  if [ "$build" = yes ]; then
    cargo build --release --locked --bin berth
  elif [ ! -x target/release/berth ]; then
    echo "critest: --no-build, but target/release/berth is missing" >&2
    exit 1
  fi
  exec unshare --mount --net --pid --fork --mount-proc --propagation private \
    "$PWD/scripts/critest.sh" --inside "$@"
fi
shift
only_conformance=no
for a in "$@"; do [ "$a" = --conformance-only ] && only_conformance=yes; done
# the mount propagation specs need / shared in the runtime's namespace
mount --make-rshared /
ip link set lo up
root=$(mktemp -d /tmp/berth-critest.XXXXXX)
echo "critest: daemon, registry and logs in $root"
export BERTH="$PWD/target/release/berth" BERTH_HOST="unix://$root/berth.sock"
mirrors=()
for r in registry.k8s.io gcr.io k8s.gcr.io; do mirrors+=(--registry-mirror-for "$r=http://127.0.0.1:5000"); done
"$BERTH" registry serve --addr 127.0.0.1:5000 --root "$root/registry" > "$root/registry.log" 2>&1 &
# start_daemon CNI_CONF_DIR [FLAGS...]: berth's daemon; with "none", pods
# go on berth's bridge
start_daemon() {
  local cni=$1
  shift
  "$BERTH" daemon --data-root "$root/data" --exec-root "$root/run" -H "$BERTH_HOST" "${mirrors[@]}" \
    --cni-conf-dir "$cni" "$@" >> "$root/daemon.log" 2>&1 &
  daemon_pid=$!
}
start_daemon none
# wait_for WHAT COMMAND...: up to 10 s
wait_for() {
  local what=$1
  shift
  for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done
  echo "critest: $what did not come up" >&2
  tail -n 20 "$root"/*.log >&2
  exit 1
}
wait_for "the CRI socket" test -S "$root/run/cri.sock"
wait_for "the registry" bash -c 'exec 3<>/dev/tcp/127.0.0.1/5000'
scripts/make-cri-test-images.sh 127.0.0.1:5000
sock="unix://$root/run/cri.sock"
known=scripts/critest-known-failures.txt
status=0
run() {
  local what=$1
  shift
  echo "== critest: $what"
  (cd "$root" && "$OLDPWD/target/cri-tools/critest" -runtime-endpoint "$sock" -image-endpoint "$sock" \
      -ginkgo.no-color "$@" > "$root/critest-$what.log" 2>&1) || true
  local log="$root/critest-$what.log"
  grep -E '^(Ran [0-9]+ of|FAIL!|SUCCESS!)' "$log" || { tail -50 "$log"; status=1; }
  if ! grep -Eq '^Ran [1-9][0-9]* of' "$log"; then
    echo "critest ran no spec ($what)"
    status=1
  fi
  # Ginkgo's summary marks each spec that did not pass; only [FAIL] ones
  # may be known
  local unexpected
  unexpected=$(grep -E '^\s+\[(FAIL|PANICKED|TIMEDOUT|INTERRUPTED|ABORTED)\] ' "$log" \
    | sed -E 's/^\s+//' | sed -E 's/^\[FAIL\] //' | grep -vxFf <(grep -v '^#' "$known") || true)
  if [ -n "$unexpected" ]; then
    echo "unexpected failures ($what):"
    echo "$unexpected"
    status=1
  fi
}
run conformance -ginkgo.focus 'Conformance'
[ "$only_conformance" = yes ] || run full
# the streaming specs again, over WebSocket instead of SPDY
[ "$only_conformance" = yes ] || run websocket -ginkgo.focus 'Streaming' \
  -websocket-exec -websocket-attach -websocket-portforward
# the specs that touch the pod network, again with pods on a CNI network of
# Debian's plugins (bridge, host-local with its state under $root, portmap)
if [ "$only_conformance" = no ]; then
  mkdir -p "$root/cni"
  cat > "$root/cni/10-critest.conflist" <<CONF
{"cniVersion": "1.0.0", "name": "critest", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$root/cni-ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
CONF
  kill "$daemon_pid"
  wait "$daemon_pid" || true
  rm -f "$root/run/cri.sock"
  start_daemon "$root/cni" --cni-bin-dir /usr/lib/cni
  wait_for "the CRI socket (CNI)" test -S "$root/run/cri.sock"
  run cni -ginkgo.focus 'Networking|portforward|should support network|HostNetwork|sysctls'
fi
echo "logs: $root"
exit $status
