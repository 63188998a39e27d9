#!/usr/bin/env bash
# Builds the real binaries the end-to-end tests and `make demo` run against, from the Go
# module proxy, and caches them outside the clone so later runs (and fresh CI clones on
# the same machine) reuse them. Prints the directory that holds them on its last line.
#
# Why build from source: no cluster, Docker or download of release binaries is possible
# here; the module proxy is the one source we can reach.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
HELM3_VERSION=${HELM3_VERSION:-v3.22.0}
HELM4_VERSION=${HELM4_VERSION:-v4.3.1}
ISTIO_API_VERSION=${ISTIO_API_VERSION:-v1.31.1}

cache=${XDG_CACHE_HOME:-$HOME/.cache}/helm-canary/testbin
dir=$cache/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM3_VERSION-$HELM4_VERSION-istio-$ISTIO_API_VERSION
mkdir -p "$dir" "$cache/src"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

log() { echo "testbin: $*" >&2; }

build_etcd() {
  [ -x "$dir/etcd" ] && return
  log "building etcd $ETCD_VERSION (about 1 minute the first time)"
  local src=$cache/src/etcd-$ETCD_VERSION
  mkdir -p "$src"
  cat >"$src/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$src" && rm -f go.mod go.sum && go mod init testbin/etcd >/dev/null 2>&1 &&
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 && go mod tidy >/dev/null 2>&1 &&
    go build -o "$dir/etcd.tmp" . && mv "$dir/etcd.tmp" "$dir/etcd")
}

build_apiserver() {
  [ -x "$dir/kube-apiserver" ] && return
  log "building kube-apiserver $K8S_VERSION (about 7 minutes on 2 cores the first time)"
  local src=$cache/src/kube-apiserver-$K8S_VERSION
  mkdir -p "$src"
  local kdir
  kdir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  local staging=v0.${K8S_VERSION#v1.}
  {
    echo "module testbin/kube-apiserver"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # k8s.io/kubernetes replaces its staging modules with local paths; point them at
    # the published versions instead.
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$kdir/go.mod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } >"$src/go.mod"
  cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  (cd "$src" && go mod tidy >/dev/null 2>&1 &&
    go build -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver && mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver")
}

build_helm() { # major version
  local major=$1 version
  [ "$major" = 3 ] && version=$HELM3_VERSION || version=$HELM4_VERSION
  [ -x "$dir/helm$major" ] && return
  log "building helm $version (about 2-3 minutes the first time)"
  local ldflags="-X helm.sh/helm/v$major/internal/version.version=$version -X helm.sh/helm/v$major/internal/version.metadata="
  if [ "$major" = 3 ]; then
    # Without these a source-built Helm 3 assumes Kubernetes v1.20 for `helm template`.
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  fi
  local gobin=$cache/src/helm$major-$version
  mkdir -p "$gobin"
  GOBIN=$gobin GOFLAGS= go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v$major/cmd/helm@$version"
  mv "$gobin/helm" "$dir/helm$major"
}

crds() {
  [ -s "$dir/istio-crds.yaml" ] && return
  local idir
  idir=$(go mod download -json "istio.io/api@$ISTIO_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  cp "$idir/kubernetes/customresourcedefinitions.gen.yaml" "$dir/istio-crds.yaml.tmp"
  mv "$dir/istio-crds.yaml.tmp" "$dir/istio-crds.yaml"
}

what=${1:-all}
case $what in
all) crds; build_etcd; build_apiserver; build_helm 3; build_helm 4 ;;
cluster) crds; build_etcd; build_apiserver ;;
helm) build_helm 3; build_helm 4 ;;
*) echo "usage: $0 [all|cluster|helm]" >&2; exit 2 ;;
esac
log "ready in $dir"
echo "$dir"
