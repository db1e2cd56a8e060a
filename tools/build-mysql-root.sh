#!/usr/bin/env bash
# MySQL 9.7 for the tests (the mysql backend on MySQL, and Vitess's tablets): Debian
# unstable's mysql-server-core in a minbase root made with debootstrap. 9.7 doesn't run
# on bookworm's libraries, and no MySQL 8.x exists in any registry reachable here.
# Pinned (suite and package version), cached outside the repo, idempotent: a root whose
# stamp names the pinned version is used as it is. Needs root (debootstrap, chroot).
#
#   tools/build-mysql-root.sh     (prints the root's path last)
set -euo pipefail

SUITE=sid
MYSQL_VERSION=9.7.4-2
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

cache="${STRATUM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stratum-operator}"
root="$cache/mysql-root"
stamp="$cache/.mysql-root.version"
log() { echo "build-mysql-root: $*" >&2; }

if [ -x "$root/usr/sbin/mysqld" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$SUITE $MYSQL_VERSION" ]; then
  echo "$root"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  log "needs root (debootstrap and chroot) to make $root"
  exit 1
fi
command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
log "making a Debian $SUITE root with mysql-server-core $MYSQL_VERSION (first time: minutes, ~800 MB)"
rm -rf "$root.tmp"
debootstrap --variant=minbase "$SUITE" "$root.tmp" "$MIRROR" >/dev/null
# the suite's index is past its Valid-Until date on this mirror's snapshot
apt_in() { chroot "$root.tmp" apt-get -o Acquire::Check-Valid-Until=false -qq "$@"; }
apt_in update
DEBIAN_FRONTEND=noninteractive apt_in install -y --no-install-recommends \
  "mysql-server-core=$MYSQL_VERSION" "mysql-client-core=$MYSQL_VERSION" >/dev/null
chroot "$root.tmp" apt-get clean
"$root.tmp/usr/sbin/mysqld" --version >/dev/null 2>&1 || chroot "$root.tmp" mysqld --version >/dev/null
rm -rf "$root"
mv "$root.tmp" "$root"
echo "$SUITE $MYSQL_VERSION" > "$stamp"
log "$(chroot "$root" mysqld --version)"
echo "$root"
