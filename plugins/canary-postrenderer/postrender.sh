#!/bin/sh
# Run by Helm 4 as the canary-postrenderer plugin (see plugin.yaml): the manifests on
# stdin, `helm-canary render` on them, the result on stdout. Arguments are Helm's
# --post-renderer-args, in order.
#
# Helm 4 discards a post-renderer's stderr and only reports "plugin exited with
# error", so whatever `render` writes to stderr (errors and warnings) is also
# appended to a log file, by default ~/.local/state/helm-canary/postrender.log:
#   HELM_CANARY_LOG   the log file
#   HELM_CANARY_BIN   the helm-canary binary (default: bin/helm-canary next to this
#                     script, as in the release tarball, else that of this checkout)
set -u

log=${HELM_CANARY_LOG:-${XDG_STATE_HOME:-$HOME/.local/state}/helm-canary/postrender.log}

# Helm installs a local plugin directory as a symbolic link and runs this script
# through it: cd -P resolves the link, so ../.. is the checkout, not Helm's data home.
here=$(cd -P "$(dirname "$0")" && pwd -P)
root=$(cd -P "$here/../.." && pwd -P)
bin=$root/bin/helm-canary
[ -x "$here/bin/helm-canary" ] && bin=$here/bin/helm-canary
bin=${HELM_CANARY_BIN:-$bin}

stderr=$(mktemp "${TMPDIR:-/tmp}/helm-canary-postrender.XXXXXX") || exit 1
trap 'rm -f "$stderr"' EXIT

if [ -x "$bin" ]; then
	"$bin" render "$@" 2>"$stderr"
	status=$?
else
	echo "canary-postrenderer: $bin is missing or not executable; build it with: cd $root && go build -o bin/helm-canary ./cmd/helm-canary (or set HELM_CANARY_BIN)" >"$stderr"
	status=127
fi

if [ -s "$stderr" ]; then
	# The log is best effort: failing to write it must not fail the render.
	if mkdir -p "$(dirname "$log")" 2>/dev/null; then
		{
			echo "--- $(date -u +%Y-%m-%dT%H:%M:%SZ) canary-postrenderer exit $status: helm-canary render $*"
			cat "$stderr"
		} >>"$log" 2>/dev/null
	fi
	cat "$stderr" >&2
fi
exit "$status"
