#!/usr/bin/env bash
# Builds the real binaries the end-to-end tests and `make demo` run against, from the Go
# module proxy, and caches them outside the clone so later runs (and fresh CI clones on
# the same machine) reuse them. Prints the directory that holds them on its last line.
#
# Why build from source: no cluster, Docker or download of release binaries is possible
# here; the module proxy is the one source we can reach.
#
# Targets: cluster (etcd; kube-apiserver, kube-controller-manager and kube-scheduler
# as one binary, kube; kwok and its stages; Istio's CRDs), helm (helm3, helm4), istio
# (istio-check: Istio's validation and analyzers), all (everything).
#
# A binary whose recipe (versions, flags, source) is written next to it as
# .NAME.recipe is rebuilt when the recipe changes, so a changed build never hides
# behind a cached one.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
HELM3_VERSION=${HELM3_VERSION:-v3.22.0}
HELM4_VERSION=${HELM4_VERSION:-v4.3.1}
ISTIO_API_VERSION=${ISTIO_API_VERSION:-v1.31.1}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}

cache=${XDG_CACHE_HOME:-$HOME/.cache}/helm-canary/testbin
dir=$cache/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM3_VERSION-$HELM4_VERSION-istio-$ISTIO_API_VERSION
mkdir -p "$dir" "$cache/src"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
root=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "testbin: $*" >&2; }

# Test packages run in parallel and each may call this script: one builds, the
# others wait for it and then find everything cached.
exec 9>"$cache/.lock"
if ! flock -n 9; then
  log "waiting for another hack/testbin.sh to finish building"
  flock 9
fi

# fresh NAME RECIPE: NAME exists and was built from RECIPE.
fresh() { [ -x "$dir/$1" ] && [ "$(cat "$dir/.$1.recipe" 2>/dev/null)" = "$2" ]; }
# built NAME RECIPE START: records the recipe and how long the build took.
built() {
  printf '%s' "$2" >"$dir/.$1.recipe"
  log "built $1 in $(($(date +%s) - $3))s"
}

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

# kube is kube-apiserver, kube-controller-manager and kube-scheduler in one binary
# that dispatches on the name it is called by (symlinks) or its first argument: the
# three share most of their packages, so one link instead of three saves minutes.
kube_main() {
  cat <<'GO'
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

var commands = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
}

func main() {
	name, args := filepath.Base(os.Args[0]), os.Args[1:]
	if _, ok := commands[name]; !ok && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	command, ok := commands[name]
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: kube kube-apiserver|kube-controller-manager|kube-scheduler [flags]")
		os.Exit(2)
	}
	cmd := command()
	cmd.SetArgs(args)
	os.Exit(cli.Run(cmd))
}
GO
}

build_kube() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  # A source build reports v0.0.0-master unless told its version; charts with a
  # kubeVersion constraint would then refuse to install.
  local ldflags="" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  local recipe
  recipe="kubernetes $K8S_VERSION; ldflags$ldflags; main $(kube_main | sha256sum | cut -c1-16)"
  fresh kube "$recipe" && return
  log "building kube-apiserver, kube-controller-manager and kube-scheduler $K8S_VERSION as one binary (about 9 minutes on 2 cores the first time, 3 once kube-apiserver's packages are in Go's build cache)"
  local start; start=$(date +%s)
  local src=$cache/src/kube-$K8S_VERSION
  mkdir -p "$src"
  local kdir
  kdir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  local staging=v0.${K8S_VERSION#v1.}
  {
    echo "module testbin/kube"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # k8s.io/kubernetes replaces its staging modules with local paths; point them at
    # the published versions instead.
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$kdir/go.mod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } >"$src/go.mod"
  kube_main >"$src/main.go"
  (cd "$src" && go mod tidy >/dev/null 2>&1 &&
    go build -ldflags "$ldflags" -o "$dir/kube.tmp" . && mv "$dir/kube.tmp" "$dir/kube")
  local name
  for name in kube-apiserver kube-controller-manager kube-scheduler; do
    ln -sfn kube "$dir/$name"
  done
  built kube "$recipe" "$start"
}

build_kwok() {
  local recipe="kwok $KWOK_VERSION"
  fresh kwok "$recipe" && [ -s "$dir/kwok-stages.yaml" ] && return
  log "building kwok $KWOK_VERSION (about 2.5 minutes the first time)"
  local start; start=$(date +%s)
  local gobin=$cache/src/kwok-$KWOK_VERSION
  mkdir -p "$gobin"
  GOBIN=$gobin GOFLAGS= go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  mv "$gobin/kwok" "$dir/kwok"
  # The stages kwokctl itself runs: nodes become Ready and renew their leases (without
  # leases the node lifecycle controller evicts every pod after ~50 s), pods become
  # Ready, Jobs' pods complete, deleted pods go.
  local kdir
  kdir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  local f
  for f in "$kdir"/kustomize/stage/node/fast/node-*.yaml "$kdir"/kustomize/stage/node/heartbeat-with-lease/*.yaml \
    "$kdir"/kustomize/stage/pod/fast/pod-*.yaml; do
    echo "---"
    cat "$f"
  done >"$dir/kwok-stages.yaml.tmp"
  mv "$dir/kwok-stages.yaml.tmp" "$dir/kwok-stages.yaml"
  built kwok "$recipe" "$start"
}

# istio-check is hack/istio-check, a module of its own so that istio.io/istio stays
# out of helm-canary's go.mod and binary.
build_istio_check() {
  local recipe
  recipe="istio-check $(cat "$root"/hack/istio-check/go.mod "$root"/hack/istio-check/*.go | sha256sum | cut -c1-16)"
  fresh istio-check "$recipe" && return
  log "building istio-check: Istio's validation and analyzers (about 6 minutes the first time)"
  local start; start=$(date +%s)
  (cd "$root/hack/istio-check" && go build -trimpath -o "$dir/istio-check.tmp" . && mv "$dir/istio-check.tmp" "$dir/istio-check")
  built istio-check "$recipe" "$start"
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
all) crds; build_etcd; build_kube; build_kwok; build_helm 3; build_helm 4; build_istio_check ;;
cluster) crds; build_etcd; build_kube; build_kwok ;;
helm) build_helm 3; build_helm 4 ;;
istio) build_istio_check ;;
*) echo "usage: $0 [all|cluster|helm|istio]" >&2; exit 2 ;;
esac
log "ready in $dir"
echo "$dir"
