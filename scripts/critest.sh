#!/usr/bin/env bash
# critest (cri-tools v1.36.0) against a fresh berth daemon, in namespaces of
# its own: the images come from scripts/make-cri-test-images.sh through
# `berth registry` on 127.0.0.1 as the mirror of registry.k8s.io, gcr.io and
# k8s.gcr.io. Prints Ginkgo's summary of a run focused on [Conformance] and
# of the full default suite, and fails when a spec fails that docs/cri.md
# does not list as a known failure (scripts/critest-known-failures.txt).
#   scripts/critest.sh [--conformance-only]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --inside ]; then
  scripts/cri-tools.sh
  [ -x target/release/berth ] || cargo build --release --locked
  exec unshare --mount --net --pid --fork --mount-proc --propagation private "$0" --inside "$@"
fi
shift
only_conformance=${1:-}
# the mount propagation specs need / shared in the runtime's namespace
mount --make-rshared /
ip link set lo up
root=$(mktemp -d /tmp/berth-critest.XXXXXX)
export BERTH="$PWD/target/release/berth" BERTH_HOST="unix://$root/berth.sock"
mirrors=()
for r in registry.k8s.io gcr.io k8s.gcr.io; do mirrors+=(--registry-mirror-for "$r=http://127.0.0.1:5000"); done
"$BERTH" registry serve --addr 127.0.0.1:5000 --root "$root/registry" > "$root/registry.log" 2>&1 &
"$BERTH" daemon --data-root "$root/data" --exec-root "$root/run" -H "$BERTH_HOST" "${mirrors[@]}" > "$root/daemon.log" 2>&1 &
for _ in $(seq 100); do [ -S "$root/run/cri.sock" ] && break; sleep 0.1; done
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
  grep -E '^(Ran [0-9]+ of|FAIL!|SUCCESS!)' "$root/critest-$what.log" || { tail -50 "$root/critest-$what.log"; status=1; }
  local unexpected
  unexpected=$(grep -E '^\s+\[FAIL\]' "$root/critest-$what.log" | sed -E 's/^\s+\[FAIL\] //' | grep -vxFf <(grep -v '^#' "$known") || true)
  if [ -n "$unexpected" ]; then
    echo "unexpected failures ($what):"
    echo "$unexpected"
    status=1
  fi
}
run conformance -ginkgo.focus 'Conformance'
[ "$only_conformance" = --conformance-only ] || run full
echo "logs: $root"
exit $status
