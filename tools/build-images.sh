#!/usr/bin/env bash
# Builds the proxy, writer and operator images with buildah: daemonless, vfs storage,
# chroot isolation (no Docker engine here). When the public base can't be pulled, a
# stand-in is made first with debootstrap (Debian bookworm: Python 3.11 from Debian's
# packages) and tagged under the base's public name in local storage, so the Dockerfiles
# build unchanged. Idempotent: the stand-in is made once, layers are cached.
#
#   tools/build-images.sh [proxy|writer|operator ...]   (default: all three)
#
# Prints one "component image-name" line per image built, last.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${STRATUM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stratum-operator}"
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}" BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
# the project version: one place (operator/pyproject.toml; a test keeps the others equal)
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/operator/pyproject.toml")"
base="docker.io/library/python:3.11-slim"
registry="ghcr.io/stratum-operator"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { echo "build-images: $*" >&2; }

for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { log "$tool is missing: run 'make provision'"; exit 2; }
done

ensure_base() {
  buildah inspect --type image "$base" >/dev/null 2>&1 && return
  if timeout 120 buildah pull --quiet "$base" >/dev/null 2>&1; then
    return
  fi
  log "cannot pull $base: making a stand-in with debootstrap (bookworm, Python 3.11)"
  local rootfs="$cache/python-3.11-bookworm-rootfs"
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    rm -rf "$rootfs.tmp"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$rootfs.tmp" "$mirror" >&2
    # what the public slim image leaves out too
    rm -rf "$rootfs.tmp"/var/cache/apt/archives/*.deb "$rootfs.tmp"/var/lib/apt/lists/* \
      "$rootfs.tmp"/usr/share/doc "$rootfs.tmp"/usr/share/man "$rootfs.tmp"/usr/share/locale
    mv "$rootfs.tmp" "$rootfs"
  fi
  local ctr
  ctr=$(buildah from scratch)
  buildah copy --quiet "$ctr" "$rootfs/" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd python3 \
    --label org.opencontainers.image.description="debootstrap stand-in for $base" "$ctr"
  buildah commit --quiet --rm "$ctr" "$base" >/dev/null
}

dockerfile() {
  case "$1" in
    proxy) echo "$root/images/proxy/Dockerfile" ;;
    writer) echo "$root/images/writer/Dockerfile" ;;
    operator) echo "$root/operator/Dockerfile" ;;
    *) log "unknown image $1 (proxy, writer, operator)"; exit 2 ;;
  esac
}

# a TLS-inspecting proxy's CA, for pip inside the build stage only (never in a layer)
secret=()
ca="${PIP_CERT:-${SSL_CERT_FILE:-}}"
[ -n "$ca" ] && [ -f "$ca" ] && secret=(--secret "id=build-ca,src=$ca")

wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(proxy writer operator)
ensure_base
built=()
for component in "${wanted[@]}"; do
  image="$registry/stratum-$component:$version"
  log "building $image"
  buildah bud --quiet --layers --file "$(dockerfile "$component")" "${secret[@]}" \
    --build-arg "VERSION=$version" --tag "$image" "$root" >&2
  built+=("$component $image")
done
printf '%s\n' "${built[@]}"
