#!/usr/bin/env bash
# The images critest (cri-tools v1.36.0) pulls, made offline from the
# project's busybox and pause, and pushed to a registry that a berth daemon
# uses as the mirror of registry.k8s.io, gcr.io and k8s.gcr.io
# (--registry-mirror-for). The mirror serves the same repository paths, so
# registry.k8s.io/e2e-test-images/busybox:1.29-2 is
# REGISTRY/e2e-test-images/busybox:1.29-2.
#   BERTH_HOST=unix:///... scripts/make-cri-test-images.sh REGISTRY (e.g. 127.0.0.1:5000)
# Stand-ins, not the real images: what each spec checks of them is in
# docs/cri.md. The digest-pinned test-image-digest cannot be made offline.
set -euo pipefail
reg=${1:?usage: make-cri-test-images.sh REGISTRY}
here=$(cd "$(dirname "$0")" && pwd)
berth=${BERTH:-berth}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Debian's busybox built from source (scripts/build-busybox.sh, run by
# scripts/cri-tools.sh): pgrep, ipcs, and applets that are programs
busybox=${CRI_BUSYBOX:-$here/../target/cri-tools/busybox}
[ -x "$busybox" ] || { echo "make-cri-test-images: $busybox is missing: run scripts/cri-tools.sh" >&2; exit 1; }
BUSYBOX=$busybox "$here/make-busybox-rootfs.sh" "$work/busybox.tar"
"$here/make-pause-image.sh" "$work/pause.tar"
"$berth" import -c 'CMD ["sh"]' "$work/busybox.tar" cri-test/busybox:base >/dev/null
# two pauses: the sandboxes' (3.10) must not be the image a spec removes (3.9)
for v in 3.9 3.10; do
  "$berth" import -c 'ENTRYPOINT ["/pause"]' -c 'USER 65535:65535' -c "LABEL version=$v" \
    "$work/pause.tar" "cri-test/pause:$v" >/dev/null
done

# the build context of image NAME
ctx_of() {
  local name=$1
  echo "$work/ctx-${name//[\/:]/_}"
}

# build NAME DOCKERFILE-LINES...: an image FROM the busybox stand-in
build() {
  local name=$1
  shift
  local ctx
  ctx=$(ctx_of "$name")
  mkdir -p "$ctx"
  { echo "FROM cri-test/busybox:base"; printf '%s\n' "$@"; } > "$ctx/Dockerfile"
  "$berth" build -q -t "$name" "$ctx" >/dev/null
}

push() {
  local local_name=$1 path=$2
  "$berth" tag "$local_name" "$reg/$path"
  "$berth" push "$reg/$path" >/dev/null
}

push cri-test/busybox:base e2e-test-images/busybox:1.29-2
push cri-test/pause:3.9 pause:3.9
push cri-test/pause:3.10 pause:3.10

# a web server on :80 answering 200 under a master that looks like nginx's
# (scripts/images/nginx.c): its title, its name, its pid file
mkdir -p "$(ctx_of cri-test/nginx)"
gcc -static -Os -s -o "$(ctx_of cri-test/nginx)/nginx" "$here/images/nginx.c"
build cri-test/nginx \
  'RUN mkdir -p /usr/share/nginx/html /var/run && echo "<h1>nginx stand-in</h1>" > /usr/share/nginx/html/index.html' \
  'COPY nginx /usr/sbin/nginx' \
  'CMD ["nginx", "-g", "daemon off;"]'
push cri-test/nginx e2e-test-images/nginx:1.14-2
# setuid root, it prints its effective uid (scripts/images/nonewprivs.c)
mkdir -p "$(ctx_of cri-test/nonewprivs)"
gcc -static -Os -s -o "$(ctx_of cri-test/nonewprivs)/nnp" "$here/images/nonewprivs.c"
build cri-test/nonewprivs \
  'COPY nnp /usr/local/bin/nnp' \
  'RUN chmod 4755 /usr/local/bin/nnp' \
  'ENTRYPOINT ["/usr/local/bin/nnp"]'
push cri-test/nonewprivs e2e-test-images/nonewprivs:1.3
# httpd-foreground that says "httpd" on stderr at start, as Apache does
build cri-test/httpd \
  'RUN mkdir -p /usr/local/apache2/htdocs && echo "<html>It works!</html>" > /usr/local/apache2/htdocs/index.html' \
  'RUN mkdir -p /usr/local/bin && printf "#!/bin/sh\necho \"httpd: AH00558: stand-in listening on :80\" >&2\nexec httpd -f -p 80 -h /usr/local/apache2/htdocs\n" > /usr/local/bin/httpd-foreground && chmod +x /usr/local/bin/httpd-foreground' \
  'CMD ["httpd-foreground"]'
push cri-test/httpd e2e-test-images/httpd:2.4.39-4

tools=k8s-staging-cri-tools
for u in "user-uid:1002" "user-username:www-data" "user-uid-group:1003:1004" "user-username-group:www-data:1004"; do
  name=${u%%:*}
  build "cri-test/$name" "USER ${u#*:}"
  push "cri-test/$name" "$tools/test-image-$name:latest"
done
build cri-test/latest 'RUN echo latest > /latest'
push cri-test/latest "$tools/test-image-latest:latest"
build cri-test/tag-test 'RUN echo test > /test'
push cri-test/tag-test "$tools/test-image-tag:test"
build cri-test/tag-all 'RUN echo all > /all'
push cri-test/tag-all "$tools/test-image-tag:all"
for i in 1 2 3; do
  build "cri-test/image-$i" "RUN echo $i > /image-$i"
  push "cri-test/image-$i" "$tools/test-image-$i:latest"
done
build cri-test/tags 'RUN echo tags > /tags'
for t in 1 2 3; do
  push cri-test/tags "$tools/test-image-tags:$t"
done
build cri-test/predefined-group \
  'RUN echo "group-defined-in-image:x:50000:default-user" >> /etc/group && echo "default-user:x:1000:1000::/home:/bin/sh" >> /etc/passwd' \
  'USER 1000'
push cri-test/predefined-group "$tools/test-image-predefined-group:latest"
build cri-test/hostnet-nginx \
  'RUN mkdir -p /w && echo ok > /w/index.html' \
  'CMD ["httpd", "-f", "-p", "12003", "-h", "/w"]'
push cri-test/hostnet-nginx "$tools/hostnet-nginx-amd64:latest"

# the images stay only in the registry: critest pulls them itself
"$berth" images --format '{{.Repository}}:{{.Tag}}' | grep -E "^(cri-test/|$reg/)" | xargs -r "$berth" rmi -f >/dev/null
echo "CRI test images are in $reg"
