#!/bin/sh
# Install and update hook of the `canary` Helm plugin (see plugin.yaml): builds
# bin/helm-canary from this checkout with `go build`.
#
#   install-hook.sh install   build only when bin/helm-canary is missing
#   install-hook.sh update    always rebuild (`helm plugin update` pulled new sources;
#                             Helm updates only plugins installed from a VCS URL)
#
# Helm 4 gives hooks HELM_PLUGIN_NAME and HELM_PLUGIN_DIR and no other HELM_* variable
# (no HELM_BIN), so this script needs nothing else; run by hand it finds the checkout
# from its own path.
set -eu

mode=${1:-install}
case $mode in
install | update) ;;
*)
	echo "install-hook.sh: unknown mode \"$mode\" (want install or update)" >&2
	exit 2
	;;
esac

# pwd -P: Helm links a local plugin directory into its plugins directory; build in
# the real checkout, not through the link.
root=$(cd -P "${HELM_PLUGIN_DIR:-$(dirname "$0")/..}" && pwd -P)
bin=$root/bin/helm-canary

helm4_hint() {
	echo "helm-canary: with Helm 4, also install the post-renderer plugin for 'helm upgrade --post-renderer canary-postrenderer':"
	echo "helm-canary:     helm plugin install $root/plugins/canary-postrenderer"
	echo "helm-canary: (not where Helm 3 loads plugins from: Helm 3 cannot read it and then loads no plugin; see the README)"
}

if [ "$mode" = install ] && [ -x "$bin" ]; then
	echo "helm-canary: using the existing $bin (to rebuild it: sh $root/scripts/install-hook.sh update)"
	helm4_hint
	exit 0
fi

if ! command -v go >/dev/null 2>&1; then
	cat >&2 <<MSG
helm-canary: cannot build $bin: Go is not installed (no 'go' on PATH).
helm-canary: Helm keeps the plugin installed; install Go 1.26 or newer (https://go.dev/dl/)
helm-canary: and build the binary, then 'helm canary' works:
helm-canary:     sh $root/scripts/install-hook.sh
MSG
	exit 1
fi

# The version has one source: plugin.yaml.
version=$(sed -n 's/^version:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}[[:space:]]*$/\1/p' "$root/plugin.yaml" | head -n 1)
echo "helm-canary: building $bin (version ${version:-dev}) with $(go version), this takes a minute the first time..."
start=$(date +%s)
cd "$root"
# Built next to the target and renamed, so an interrupted build leaves no broken binary.
if ! go build -trimpath -ldflags "-X main.version=${version:-dev}" -o "$bin.tmp" ./cmd/helm-canary; then
	rm -f "$bin.tmp"
	echo "helm-canary: go build failed; the errors are above" >&2
	exit 1
fi
mv "$bin.tmp" "$bin"
echo "helm-canary: built $bin in $(($(date +%s) - start))s"
helm4_hint
