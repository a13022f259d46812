#!/usr/bin/env bash
# A static busybox built from Debian bookworm's source package (its upstream
# tarball, busybox's defconfig), for critest's busybox
# stand-in: Debian's busybox-static lacks pgrep and ipcs, and its shell runs
# applets in-process (so `sh -c ls` never execs a masked /bin/ls). Built
# once, static, without in-process applets.
#   scripts/build-busybox.sh OUT   (about two minutes on two cores)
# The source comes from Debian's archive through a temporary deb-src list
# of its own; the machine's apt state is left as it was.
set -euo pipefail
out=${1:?usage: build-busybox.sh OUT}
[ -x "$out" ] && "$out" --list | grep -qx pgrep && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tool in gcc make bzip2; do
  command -v "$tool" >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends build-essential bzip2 >/dev/null
    break
  }
done
echo "deb-src http://deb.debian.org/debian bookworm main" > "$work/sources.list"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
apt_src=(-q -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
apt-get "${apt_src[@]}" update > "$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; exit 1; }
(cd "$work" && apt-get "${apt_src[@]}" source --download-only busybox) > "$work/apt.log" 2>&1 \
  || { cat "$work/apt.log" >&2; exit 1; }
tar -C "$work" -xjf "$work"/busybox_*.orig.tar.bz2
src=$(echo "$work"/busybox-*/)
make -C "$src" -s defconfig > /dev/null
# static; applets exec'd as programs, as a distribution's coreutils are;
# tc does not build against newer kernel headers and no spec uses it
for off in FEATURE_SH_STANDALONE FEATURE_PREFER_APPLETS FEATURE_SH_NOFORK TC; do
  sed -i "s/^CONFIG_$off=y/# CONFIG_$off is not set/" "$src/.config"
done
sed -i 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/' "$src/.config"
{ yes '' || true; } | make -C "$src" -s oldconfig > /dev/null
make -C "$src" -s -j"$(nproc)" busybox > "$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
for applet in pgrep ipcs pidof httpd nc sh ls; do
  "$src/busybox" --list | grep -qx "$applet" || { echo "build-busybox: no $applet applet" >&2; exit 1; }
done
mkdir -p "$(dirname "$out")"
cp "$src/busybox" "$out"
