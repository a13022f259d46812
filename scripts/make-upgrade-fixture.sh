#!/usr/bin/env bash
# Makes the data-root fixture of the upgrade test (crates/berth/tests/
# upgrade.rs): a daemon of the current release fills a data root with one
# of each thing whose on-disk form must survive a change of schema, stops,
# and the root is archived. Run as root, from a release build:
#   scripts/make-upgrade-fixture.sh crates/berth/tests/fixtures/data-root-NAME.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "$1")
berth=$(realpath "${BERTH:-target/release/berth}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/make-busybox-rootfs.sh "$work/busybox.tar" >/dev/null
# private namespaces: the bridge, nftables rules and mounts vanish with them
unshare --mount --net --pid --fork --mount-proc --propagation private \
  bash -s "$berth" "$work" <<'INNER'
set -euo pipefail
berth=$1 w=$2
ip link set lo up
echo '{}' > "$w/daemon.json"
export BERTH_HOST="unix://$w/berth.sock"
"$berth" daemon -H "$BERTH_HOST" --data-root "$w/data" --exec-root "$w/run" \
  --config-file "$w/daemon.json" > "$w/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do "$berth" version >/dev/null 2>&1 && break; sleep 0.1; done
"$berth" import -c 'CMD ["sh"]' \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$w/busybox.tar" busybox:latest >/dev/null
"$berth" tag busybox:latest upgrade/busybox:v1
mkdir "$w/ctx"
printf 'FROM busybox\nRUN echo built > /built\nLABEL stage=one\n' > "$w/ctx/Dockerfile"
"$berth" build -q -t built:1 "$w/ctx" >/dev/null
"$berth" volume create --label keep=yes data1 >/dev/null
"$berth" run --name writer --label role=writer -v data1:/data busybox \
  sh -c 'echo hello > /data/f; echo logged line; echo to stderr >&2' >/dev/null 2>&1
"$berth" network create --subnet 172.31.7.0/24 --gateway 172.31.7.1 upnet >/dev/null
"$berth" run -d --name web --restart always --network upnet --ip 172.31.7.9 \
  -p 8080:80 busybox sh -c 'echo web up; exec sleep 100000' >/dev/null
"$berth" create --name idle --restart on-failure:3 -e MODE=idle busybox true >/dev/null
sleep 1
kill -TERM "$daemon"
wait "$daemon" || true
INNER
tar --xattrs --xattrs-include='*' --numeric-owner -C "$work" -czf "$out" data
echo "wrote $out ($(du -h "$out" | cut -f1))"
