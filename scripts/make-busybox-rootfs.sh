#!/usr/bin/env bash
# Builds the root filesystem of a `busybox` image from Debian's busybox-static
# and writes it as a tar archive: the project's only source of images, so that
# no test needs a registry on the internet.
#   usage: [BUSYBOX=/path/to/static/busybox] scripts/make-busybox-rootfs.sh OUT.tar
# BUSYBOX names another static busybox (critest's, from scripts/build-busybox.sh).
set -euo pipefail
out=${1:?usage: make-busybox-rootfs.sh OUT.tar}
bb=${BUSYBOX:-$(command -v busybox || true)}
if [ -z "$bb" ] || ! "$bb" --list >/dev/null 2>&1; then
  echo "busybox-static is not installed (apt-get install busybox-static)" >&2
  exit 1
fi
if ldd "$bb" >/dev/null 2>&1; then
  echo "$bb is dynamically linked; install busybox-static" >&2
  exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,var/spool/mail,var/www,tmp,dev,proc,sys}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list-full); do
  [ "$applet" = "bin/busybox" ] && continue
  mkdir -p "$root/$(dirname "$applet")"
  ln -sf /bin/busybox "$root/$applet"
done
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat > "$root/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
G
echo "berth" > "$root/etc/hostname"
# a reproducible archive: fixed owner and times, sorted members
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2024-01-01 00:00:00' \
  -C "$root" -cf "$out" .
