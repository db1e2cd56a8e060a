#!/usr/bin/env bash
# Builds the two images a real test node runs (tests/harness/node) as OCI archives, with
# buildah from scratch, cached outside the repo: the pod sandbox's pause image (our
# tools/node/pause.c, gcc -static) and a busybox image (Debian's busybox-static), for
# pods that run a shell. A node can't pull: its containerd imports these archives.
# Idempotent: an archive is named by a hash of what it is built from, so an edit rebuilds.
# Given IMAGEs (ours, in buildah's storage from tools/build-images.sh), it archives those
# too, each named by its image ID, for a node to import instead of pulling.
#
#   tools/build-node-images.sh [IMAGE...]   (prints "image-name archive-path" per image, last)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${STRATUM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stratum-operator}/node-images"
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}" BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
mkdir -p "$cache"

log() { echo "build-node-images: $*" >&2; }

for tool in buildah gcc busybox; do
  command -v "$tool" >/dev/null || { log "$tool is missing: run 'make provision'"; exit 2; }
done

archive_of() {  # archive_of NAME TAG: the cached archive's path
  echo "$cache/$1-$2.tar"
}

# pack NAME TAG ROOTFS USER ENTRYPOINT-JSON: ROOTFS as a one-layer image, archived
pack() {
  local name="localhost/stratum-node/$1:$2" archive ctr
  archive=$(archive_of "$1" "$2")
  if [ ! -s "$archive" ]; then
    log "building $name"
    ctr=$(buildah from scratch)
    buildah copy --quiet "$ctr" "$3" / >/dev/null
    buildah config --user "$4" --entrypoint "$5" "$ctr"
    buildah commit --quiet --rm "$ctr" "$name" >/dev/null
    rm -f "$archive.tmp"
    buildah push --quiet "$name" "oci-archive:$archive.tmp:$name" >/dev/null
    buildah rmi "$name" >/dev/null
    mv "$archive.tmp" "$archive"
    # an edit's archive replaces the last one
    find "$cache" -maxdepth 1 -name "$1-*.tar" ! -name "$(basename "$archive")" -delete
  fi
  echo "$name $archive"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the pause image: one static binary, run as nobody
pause_tag=$(cat "$here/node/pause.c" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
if [ ! -s "$(archive_of pause "$pause_tag")" ]; then
  mkdir -p "$work/pause"
  gcc -static -O2 -s -Wall -Wextra -Werror -o "$work/pause/pause" "$here/node/pause.c"
fi
pack pause "$pause_tag" "$work/pause" 65535:65535 '["/pause"]'

# busybox: its static binary (Debian's busybox-static) and a link per applet under /bin
busybox_bin=$(command -v busybox)
if ldd "$busybox_bin" >/dev/null 2>&1; then
  log "$busybox_bin is linked dynamically: an image of it alone can't run (apt-get install busybox-static)"
  exit 2
fi
busybox_tag=$(cat "$busybox_bin" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
if [ ! -s "$(archive_of busybox "$busybox_tag")" ]; then
  mkdir -p "$work/busybox/bin"
  cp "$busybox_bin" "$work/busybox/bin/busybox"
  for applet in $("$busybox_bin" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$work/busybox/bin/$applet"
  done
fi
pack busybox "$busybox_tag" "$work/busybox" 65534:65534 '["/bin/sh"]'

# the images named on the command line, as they are in buildah's storage
for image in "$@"; do
  id=$(buildah inspect --type image --format '{{.FromImageID}}' "$image")
  component=${image##*/}
  component=${component%%:*}
  archive="$cache/$component-${id:0:12}.tar"
  if [ ! -s "$archive" ]; then
    log "archiving $image"
    rm -f "$archive.tmp"
    buildah push --quiet "$image" "oci-archive:$archive.tmp:$image" >/dev/null
    mv "$archive.tmp" "$archive"
    find "$cache" -maxdepth 1 -name "$component-*.tar" ! -name "$(basename "$archive")" -delete
  fi
  echo "$image $archive"
done
