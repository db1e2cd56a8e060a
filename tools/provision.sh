#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine, and nothing when it is all there.
# Idempotent: every step checks before it acts, so a warm machine passes in about a second.
# `provision.sh demo` (what `make demo` runs) installs only what the demo needs: Python,
# the project's packages and SQLite (Python's own); no database server, no Go, no
# control plane, so a fresh machine runs the demo in minutes.
set -euo pipefail
scope="${1:-all}"
case "$scope" in all|demo) ;; *) echo "provision: unknown scope '$scope' (all, demo)" >&2; exit 2;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
venv="${VENV:-$here/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

need_apt=()
command -v "$python" >/dev/null 2>&1 || need_apt+=(python3.11 python3.11-venv)
if [ "$scope" = all ]; then
  # PostgreSQL and MariaDB server binaries: the tests start their own throw-away instances,
  # so only the binaries are needed; no system service is started or used.
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server mariadb-client)
  command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)  # test certificates and keys
  # make images: buildah (daemonless, chroot isolation; crun is the runtime it recommends)
  # and debootstrap for the stand-in base when the public one can't be pulled
  command -v buildah >/dev/null 2>&1 || need_apt+=(buildah crun)
  command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
  # the interop tests' foreign Stratum peers come from the npm registry (tests/harness/foreign.py)
  command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
  command -v npm >/dev/null 2>&1 || need_apt+=(npm)
  # the demo report's test opens it in a real browser (tests/harness/chromium.py)
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  # a real test node (tests/harness/node): the container runtime and the CNI plugins
  # (Debian's under /usr/lib/cni), busybox for its images, nft to remove the tables
  # iptables-nft leaves behind, gcc's static libc for its pause program
  command -v containerd >/dev/null 2>&1 || need_apt+=(containerd)
  command -v runc >/dev/null 2>&1 || need_apt+=(runc)
  [ -x /usr/lib/cni/bridge ] || need_apt+=(containernetworking-plugins)
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need_apt+=(busybox-static)
  command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
  { command -v gcc >/dev/null 2>&1 && compgen -G '/usr/lib/*/libc.a' >/dev/null; } || need_apt+=(gcc libc6-dev)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "provision: installing ${need_apt[*]} from Debian" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "provision: need root to apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  # Keep the packages' maintainer scripts from starting system services we never use.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The project's Python environment: our packages editable, plus the dev tools.
stamp="$venv/.provisioned"
inputs=$(cat "$here"/packages/*/pyproject.toml "$here"/images/*/pyproject.toml "$here"/operator/pyproject.toml \
  "$here"/requirements-dev.txt 2>/dev/null | sha256sum | cut -d' ' -f1 || true)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs" ]; then
  echo "provision: building $venv" >&2
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  args=(-r "$here/requirements-dev.txt")
  for p in "$here"/packages/* "$here"/images/writer "$here"/images/proxy "$here"/operator; do
    [ -f "$p/pyproject.toml" ] && args+=(-e "$p")
  done
  "$venv/bin/pip" install -q "${args[@]}"
  echo "$inputs" > "$stamp"
fi

[ "$scope" = demo ] && exit 0

# The real control plane, helm and Vitess's vtctld for the tests: built from the Go
# module proxy, pinned, cached outside the repo (minutes the first time, then instant).
if ! command -v go >/dev/null 2>&1; then
  echo "provision: Go is needed to build the test control plane (kube-apiserver, etcd, helm)" >&2
  exit 1
fi
bash "$here/tools/build-go-tools.sh" etcd kubernetes kubernetes-node local-path coredns helm vitess prometheus >/dev/null
# the real test node's pause and busybox images, as OCI archives (seconds, then instant)
bash "$here/tools/build-node-images.sh" >/dev/null
# MySQL 9.7 for the mysql backend's tests and Vitess's tablets: Debian unstable's, in a
# root of its own made with debootstrap (minutes and ~800 MB the first time, then instant)
bash "$here/tools/build-mysql-root.sh" >/dev/null
