#!/usr/bin/env bash
# Builds the real servers the tests need from the Go module proxy, pinned, cached outside
# the repo: etcd, kube-apiserver, kube-controller-manager, kubectl, helm, the node's
# kubelet, kube-scheduler, kube-proxy, storage provisioner (Rancher's local-path-provisioner)
# and cluster DNS (CoreDNS) (tests/harness/node), and Vitess's
# vtctld, vtctldclient, vttablet and vtgate (and our vitess-check on its packages), and
# Prometheus and promtool. Idempotent: a tool whose binary is cached is not rebuilt.
#
#   tools/build-go-tools.sh [TOOL...]   (default: all; prints the bin directory last)
#
# k8s.io/kubernetes is not meant to be required as a module: its go.mod points every
# staging module (k8s.io/api, k8s.io/client-go, ...) at ./staging. A wrapper module
# requires it at v1.X.Y and pins each staging module to v0.X.Y with replace lines,
# regenerated from that version's own go.mod, so the build is the release's code.
set -euo pipefail

K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.20.2
VITESS_VERSION=v0.24.4
PROMETHEUS_VERSION=v0.316.0  # the Go module of Prometheus 3.x: prometheus and promtool
LOCAL_PATH_VERSION=v0.0.30  # Rancher's local-path provisioner: the real node's StorageClass
COREDNS_VERSION=v1.14.7  # the real node's cluster DNS (its client-go is our Kubernetes' v0.35.4)

cache="${STRATUM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stratum-operator}"
bin="$cache/bin"
mkdir -p "$bin" "$cache/build"
export GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"
export CGO_ENABLED=0

log() { echo "build-go-tools: $*" >&2; }

# A binary is cached with its version in a stamp beside it, so bumping a pin rebuilds.
fresh() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" > "$bin/.$1.version"; }

wrapper() {  # wrapper NAME VERSION PACKAGE...: a module whose tools.go imports PACKAGEs
  local name=$1 version=$2 dir
  shift 2
  dir="$cache/build/$name-$version"
  mkdir -p "$dir"
  [ -f "$dir/go.mod" ] || (cd "$dir" && go mod init "stratum-tools/$name" >/dev/null 2>&1)
  # blank imports of the commands, so tidy resolves (and keeps) what they need
  { echo '//go:build tools'; echo; echo 'package tools'; echo; echo 'import ('
    for pkg in "$@"; do echo "	_ \"$pkg\""; done; echo ')'; } > "$dir/tools.go"
  echo "$dir"
}

# One wrapper module for every Kubernetes command we build, so its go.mod stays the same
# whichever of them a call needs: the control plane's and the node's.
K8S_COMMANDS=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy)

build_kubernetes() {  # build_kubernetes COMMAND...: those of K8S_COMMANDS not yet cached
  local need=()
  for t in "$@"; do fresh "$t" "$K8S_VERSION+stamped" || need+=("$t"); done
  [ ${#need[@]} -eq 0 ] && return
  log "building ${need[*]} $K8S_VERSION (first time: several minutes)"
  local dir minor
  dir=$(wrapper kubernetes "$K8S_VERSION" "${K8S_COMMANDS[@]/#/k8s.io/kubernetes/cmd/}")
  minor="v0.${K8S_VERSION#v1.}"
  (
    cd "$dir"
    local modfile
    modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
    go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    # every "k8s.io/<m> => ./staging/src/k8s.io/<m>" becomes "k8s.io/<m> => k8s.io/<m> v0.X.Y"
    sed -n 's#^\s*\(k8s.io/[^ ]*\) => ./staging/src/.*#\1#p' "$modfile" | while read -r m; do
      go mod edit -replace="$m=$m@$minor"
    done
    go mod edit -go="$(sed -n 's/^go //p' "$modfile")"
    go mod tidy
    # Stamp the version as a release build does, or the server reports v0.0.0-master
    # and version checks (helm's kubeVersion, kubectl's skew warning) misfire.
    local v=k8s.io/component-base/version minor_only="${K8S_VERSION#v1.}"
    local ldflags="-X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=${minor_only%%.*}"
    ldflags+=" -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
    for t in "${need[@]}"; do
      go build -ldflags "$ldflags" -o "$bin/$t" "k8s.io/kubernetes/cmd/$t"
      stamp "$t" "$K8S_VERSION+stamped"
    done
  )
}

build_simple() {  # build_simple TOOL MODULE VERSION PACKAGE
  fresh "$1" "$3" && return
  log "building $1 $3"
  local dir
  dir=$(wrapper "$1" "$3" "$4")
  (
    cd "$dir"
    go get "$2@$3" >/dev/null
    go mod tidy
    go build -o "$bin/$1" "$4"
    stamp "$1" "$3"
  )
}

build_vitess() {
  # vitess-check is our test program on Vitess's own packages (tools/vitess-check): its
  # stamp carries a hash of its source, so an edit rebuilds it.
  local check_src check_version
  check_src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/vitess-check/main.go"
  check_version="$VITESS_VERSION+$(sha256sum "$check_src" | cut -c1-12)"
  local servers=(vtctld vtctldclient vttablet vtgate) need=()
  for t in "${servers[@]}"; do fresh "$t" "$VITESS_VERSION" || need+=("$t"); done
  [ ${#need[@]} -eq 0 ] && fresh vitess-check "$check_version" && return
  log "building ${need[*]} vitess-check $VITESS_VERSION (vttablet and vtgate: minutes)"
  local dir
  dir=$(wrapper vitess "$VITESS_VERSION" "${servers[@]/#/vitess.io/vitess/go/cmd/}")
  (
    cd "$dir"
    go get "vitess.io/vitess@$VITESS_VERSION" >/dev/null
    mkdir -p cmd/vitess-check
    cp "$check_src" cmd/vitess-check/main.go
    go mod tidy
    for t in "${servers[@]}"; do
      fresh "$t" "$VITESS_VERSION" && continue
      go build -o "$bin/$t" "vitess.io/vitess/go/cmd/$t"
      stamp "$t" "$VITESS_VERSION"
    done
    go build -o "$bin/vitess-check" ./cmd/vitess-check
    stamp vitess-check "$check_version"
  )
}

build_coredns() {
  # our main (tools/node/coredns) over CoreDNS's packages, with the few plugins the test
  # node's cluster DNS uses; its stamp carries a hash of that source, so an edit rebuilds
  local src version
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/node/coredns/main.go"
  version="$COREDNS_VERSION+$(sha256sum "$src" | cut -c1-12)"
  fresh coredns "$version" && return
  log "building coredns $COREDNS_VERSION"
  local dir
  dir=$(wrapper coredns "$COREDNS_VERSION" github.com/coredns/coredns/coremain)
  (
    cd "$dir"
    # the packages used, not the module root: its main imports every plugin
    go get "github.com/coredns/coredns/coremain@$COREDNS_VERSION" >/dev/null
    mkdir -p cmd/coredns
    cp "$src" cmd/coredns/main.go
    go mod tidy
    go build -o "$bin/coredns" ./cmd/coredns
    stamp coredns "$version"
  )
}

build_prometheus() {
  # the server (its web UI's assets are not built in: the API is what the tests use) and
  # promtool, for the chart's alert rules and their unit tests
  local need=()
  for t in prometheus promtool; do fresh "$t" "$PROMETHEUS_VERSION" || need+=("$t"); done
  [ ${#need[@]} -eq 0 ] && return
  log "building ${need[*]} $PROMETHEUS_VERSION (minutes)"
  local dir
  dir=$(wrapper prometheus "$PROMETHEUS_VERSION" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool)
  (
    cd "$dir"
    go get "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" >/dev/null
    go mod tidy
    for t in "${need[@]}"; do
      go build -o "$bin/$t" "github.com/prometheus/prometheus/cmd/$t"
      stamp "$t" "$PROMETHEUS_VERSION"
    done
  )
}

wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(etcd kubernetes kubernetes-node local-path coredns helm vitess prometheus)
for w in "${wanted[@]}"; do
  case "$w" in
    etcd) build_simple etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3 ;;
    kubernetes) build_kubernetes kube-apiserver kube-controller-manager kubectl ;;
    # a real node (tests/harness/node): the kubelet, and the scheduler and kube-proxy it needs
    kubernetes-node) build_kubernetes kubelet kube-scheduler kube-proxy ;;
    coredns) build_coredns ;;
    local-path) build_simple local-path-provisioner github.com/rancher/local-path-provisioner \
      "$LOCAL_PATH_VERSION" github.com/rancher/local-path-provisioner ;;
    helm) build_simple helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
    vitess) build_vitess ;;
    prometheus) build_prometheus ;;
    *) log "unknown tool $w (etcd, kubernetes, kubernetes-node, local-path, coredns, helm, vitess, prometheus)"; exit 2 ;;
  esac
done
echo "$bin"
