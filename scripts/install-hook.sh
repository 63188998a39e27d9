#!/bin/sh
# Install and update hook of the `canary` Helm plugin (see plugin.yaml): puts
# bin/helm-canary into the plugin directory.
#
#   install-hook.sh install   only when bin/helm-canary is missing
#   install-hook.sh update    always (`helm plugin update` pulled new sources; Helm
#                             updates only plugins installed from a VCS URL)
#
# How: download the release archive for plugin.yaml's version and this platform,
# verify it against the release's SHA256SUMS, and take bin/helm-canary from it. Only
# when the download is impossible (no network, no release for this platform) and Go
# is installed, build from this checkout instead. Nothing downloaded is installed
# unverified: a checksum mismatch is an error, never a reason to fall back.
#
#   HELM_CANARY_DOWNLOAD_URL   where the releases are, for mirrors and tests; the
#                              files are at $HELM_CANARY_DOWNLOAD_URL/vVERSION/
#                              (default https://github.com/helm-canary/helm-canary/releases/download)
#   HELM_CANARY_FROM_SOURCE=1  skip the download and build with Go (a development
#                              checkout whose sources differ from the release)
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

# pwd -P: Helm links a local plugin directory into its plugins directory; install into
# the real checkout, not through the link.
root=$(cd -P "${HELM_PLUGIN_DIR:-$(dirname "$0")/..}" && pwd -P)
base_url=${HELM_CANARY_DOWNLOAD_URL:-https://github.com/helm-canary/helm-canary/releases/download}
base_url=${base_url%/}
hook="sh $root/scripts/install-hook.sh $mode"

# The version has one source: plugin.yaml.
version=$(sed -n 's/^version:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}[[:space:]]*$/\1/p' "$root/plugin.yaml" | head -n 1)

case $(uname -s) in
Linux) os=linux ;;
Darwin) os=darwin ;;
MINGW* | MSYS* | CYGWIN*) os=windows ;;
*) os= ;;
esac
case $(uname -m) in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) arch= ;;
esac
exe=
[ "$os" = windows ] && exe=.exe
bin=$root/bin/helm-canary$exe

say() { echo "helm-canary: $*"; }

helm4_hint() {
	say "with Helm 4, also install the post-renderer plugin for 'helm upgrade --post-renderer canary-postrenderer':"
	say "    helm plugin install $root/plugins/canary-postrenderer"
	say "(not where Helm 3 loads plugins from: Helm 3 cannot read it and then loads no plugin; see the README)"
}

if [ "$mode" = install ] && [ -x "$bin" ]; then
	say "using the existing $bin (to replace it: sh $root/scripts/install-hook.sh update)"
	helm4_hint
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/helm-canary-install.XXXXXX")
# The partial binary next to the target goes too, whatever stops the script.
trap 'rm -rf "$tmp" "$bin.tmp.$$"' EXIT
trap 'exit 1' HUP INT TERM

fetch() { # URL FILE
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL --retry 2 --connect-timeout 10 -o "$2" "$1"
	elif command -v wget >/dev/null 2>&1; then
		wget -q -T 10 -O "$2" "$1"
	else
		echo "neither curl nor wget is installed" >"$tmp/why"
		return 1
	fi
}

sha256() { # FILE
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d ' ' -f 1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d ' ' -f 1
	elif command -v openssl >/dev/null 2>&1; then
		openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
	else
		return 1
	fi
}

# install_file FILE: into place by a rename in bin/, so no reader ever sees half a
# binary and an interrupted hook leaves none.
install_file() {
	mkdir -p "$root/bin"
	cp "$1" "$bin.tmp.$$"
	chmod 755 "$bin.tmp.$$"
	mv -f "$bin.tmp.$$" "$bin"
}

# download: 0 installed; 1 verification failed (stop); 2 not downloadable (a Go build
# may stand in), with the reason in $tmp/why.
download() {
	if [ -n "${HELM_CANARY_FROM_SOURCE:-}" ]; then
		echo "HELM_CANARY_FROM_SOURCE is set" >"$tmp/why"
		return 2
	fi
	if [ -z "$version" ]; then
		echo "no version in $root/plugin.yaml" >"$tmp/why"
		return 2
	fi
	if [ -z "$os" ] || [ -z "$arch" ]; then
		echo "no release is built for $(uname -s)/$(uname -m)" >"$tmp/why"
		return 2
	fi
	archive=helm-canary-$version-$os-$arch.tgz
	url=$base_url/v$version/$archive
	say "downloading $url"
	if ! fetch "$base_url/v$version/SHA256SUMS" "$tmp/SHA256SUMS" 2>>"$tmp/why" ||
		! fetch "$url" "$tmp/$archive" 2>>"$tmp/why"; then
		[ -s "$tmp/why" ] || echo "the download failed" >"$tmp/why"
		return 2
	fi
	want=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/SHA256SUMS")
	if [ -z "$want" ]; then
		say "$base_url/v$version/SHA256SUMS has no checksum for $archive; nothing was installed." >&2
		return 1
	fi
	if ! got=$(sha256 "$tmp/$archive"); then
		say "cannot verify $archive: no sha256sum, shasum or openssl on PATH; nothing was installed." >&2
		say "install one of them and run: $hook" >&2
		return 1
	fi
	if [ "$got" != "$want" ]; then
		say "checksum mismatch for $url:" >&2
		say "    SHA256SUMS says $want" >&2
		say "    the download is $got" >&2
		say "nothing was installed. The download is corrupt or was tampered with: retry later, or" >&2
		say "set HELM_CANARY_DOWNLOAD_URL to a mirror you trust and run: $hook" >&2
		return 1
	fi
	mkdir "$tmp/x"
	if ! tar -xzf "$tmp/$archive" -C "$tmp/x" "bin/helm-canary$exe" || [ ! -f "$tmp/x/bin/helm-canary$exe" ]; then
		say "$archive (checksum verified) has no bin/helm-canary$exe; nothing was installed." >&2
		return 1
	fi
	if ! v=$("$tmp/x/bin/helm-canary$exe" version); then
		say "bin/helm-canary$exe of $archive (checksum verified) does not run here; nothing was installed." >&2
		return 1
	fi
	install_file "$tmp/x/bin/helm-canary$exe"
	say "installed $bin from $archive (sha256 verified): $v"
}

status=0
download || status=$?
case $status in
0)
	helm4_hint
	exit 0
	;;
1) exit 1 ;;
esac
why=$(cat "$tmp/why")

if ! command -v go >/dev/null 2>&1; then
	cat >&2 <<MSG
helm-canary: cannot install $bin:
helm-canary:   no release binary: $why
helm-canary:   and Go is not installed to build one (no 'go' on PATH).
helm-canary: Helm keeps the plugin installed; 'helm canary' works once the binary is there. Either
helm-canary:   - fix the download (network, proxy, or a mirror holding v$version/SHA256SUMS and
helm-canary:     v$version/helm-canary-$version-$os-$arch.tgz: HELM_CANARY_DOWNLOAD_URL=https://your.mirror/path)
helm-canary:     and run: $hook
helm-canary:   - or install Go 1.26 or newer (https://go.dev/dl/) and run: $hook
MSG
	exit 1
fi

say "no release binary ($why); building $bin (version ${version:-dev}) with $(go version), this takes a minute the first time..."
start=$(date +%s)
# The commit from git when this is a clone; -buildvcs=false because Go's own VCS
# stamping fails the build on a clone it distrusts (another owner).
commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || true)
if [ -n "$commit" ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	commit=$commit-dirty
fi
cd "$root"
if ! go build -trimpath -buildvcs=false -ldflags "-X main.version=${version:-dev} -X main.commit=$commit" -o "$tmp/helm-canary$exe" ./cmd/helm-canary; then
	say "go build failed; the errors are above" >&2
	exit 1
fi
install_file "$tmp/helm-canary$exe"
say "built $bin in $(($(date +%s) - start))s"
helm4_hint
