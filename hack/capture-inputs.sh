#!/usr/bin/env bash
# Captures, into test/golden/inputs/, exactly what the real Helm 3 and Helm 4 CLIs hand a
# post-renderer for the example and test charts. These files are the renderer's golden
# inputs: tests must not guess Helm's formatting (Helm 3's "# Source:" comments, Helm 4's
# hooks and postrender-filename annotations), they read it from here.
#
# Re-runnable: every run starts from empty, isolated Helm homes and overwrites the files.
# Uses the helm3/helm4 binaries built by hack/testbin.sh (or HELM_TESTBIN=DIR).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/test/golden/inputs
bin=${HELM_TESTBIN:-$(bash "$root/hack/testbin.sh" helm | tail -n 1)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Isolated Helm homes, one set per Helm major: nothing from the user's Helm (plugins,
# repos) leaks in, and Helm 3 never scans the Helm 4 plugin below (Helm 3 refuses a v1
# plugin.yaml and then loads no plugins at all).
unset HELM_PLUGINS HELM_NAMESPACE HELM_KUBECONTEXT KUBECONFIG
helm() { # major args...
  local major=$1 home=$work/helm$1
  shift
  mkdir -p "$home/config" "$home/data" "$home/cache"
  HELM_CONFIG_HOME=$home/config HELM_DATA_HOME=$home/data HELM_CACHE_HOME=$home/cache \
    "$bin/helm$major" "$@"
}

# The post-renderer: copy stdin to the file named by its one argument and echo it back.
cat >"$work/capture.sh" <<'SH'
#!/bin/sh
tee "$1"
SH
chmod +x "$work/capture.sh"

# Helm 4 takes a post-renderer plugin's name, not a path: the same script as a throwaway
# postrenderer/v1 plugin. (Never in a directory Helm 3 scans: Helm 3 rejects v1 plugins.)
plugin=$work/capture-postrenderer
mkdir -p "$plugin"
cp "$work/capture.sh" "$plugin/capture.sh"
cat >"$plugin/plugin.yaml" <<'YAML'
apiVersion: v1
type: postrenderer/v1
name: capture-postrenderer
version: 0.1.0
runtime: subprocess
runtimeConfig:
  platformCommand:
    - command: ${HELM_PLUGIN_DIR}/capture.sh
YAML
helm 4 plugin install "$plugin" >/dev/null

capture() { # helm-major file helm-template-args...
  local major=$1 file=$2
  shift 2
  local tmp=$work/$file
  if [ "$major" = 3 ]; then
    helm 3 template "$@" --post-renderer "$work/capture.sh" --post-renderer-args "$tmp" >/dev/null
  else
    helm 4 template "$@" --post-renderer capture-postrenderer --post-renderer-args "$tmp" >/dev/null
  fi
  mv "$tmp" "$out/$file"
  echo "captured test/golden/inputs/$file" >&2
}

mkdir -p "$out"
cd "$root"
for major in 3 4; do
  capture "$major" "productpage-83.helm$major.yaml" productpage examples/productpage --namespace shop --set image.tag=83
  capture "$major" "productpage-84.helm$major.yaml" productpage examples/productpage --namespace shop --set image.tag=84
  capture "$major" "bookinfo-1.20.2.helm$major.yaml" bookinfo test/charts/bookinfo --namespace shop --set tag=1.20.2
done
capture 3 bookinfo-1.20.3.helm3.yaml bookinfo test/charts/bookinfo --namespace shop --set tag=1.20.3
capture 3 appchain-v1.helm3.yaml ac test/charts/appchain --namespace shop
capture 3 appchain-v2.helm3.yaml ac test/charts/appchain --namespace shop --set a.tag=v2 --set b.tag=v2 --set c.tag=v3
capture 3 kvstore-7.4.1.helm3.yaml cache test/charts/kvstore --namespace shop
capture 3 kvstore-7.4.2.helm3.yaml cache test/charts/kvstore --namespace shop --set image.tag=7.4.2
capture 3 edge-1.12.0.helm3.yaml edge test/charts/edge --namespace shop
capture 3 twoversions-1.helm3.yaml web test/charts/twoversions --namespace shop
for major in 3 4; do
  capture "$major" "stateful-1.0.helm$major.yaml" st test/charts/stateful --namespace shop
done
for major in 3 4; do
  capture "$major" "configured-1.0.helm$major.yaml" cfg test/charts/configured --namespace shop
  capture "$major" "configured-2.0.helm$major.yaml" cfg test/charts/configured --namespace shop \
    --set image.tag=1.28 --set config.greeting="hello from 2.0" --set apiKey=key-2.0 --set region=eu-central-1
done
capture 3 storefront-1.0.helm3.yaml front test/charts/storefront --namespace shop
capture 3 storefront-1.1-corp.helm3.yaml front test/charts/storefront --namespace shop --set image.tag=1.1 --set clusterDomain=corp.example
