package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	"github.com/helm-canary/helm-canary/internal/testhelm"
)

// helmTimeout bounds one helm command. Upgrades against the local API server take
// about a second; the install hook may build bin/helm-canary (a minute, cold).
const helmTimeout = 3 * time.Minute

// postRendererPlugin is the name Helm 4's --post-renderer takes.
const postRendererPlugin = "canary-postrenderer"

// helmEnv is one Helm major version with a Helm home of its own: nothing is read
// from or written to the user's Helm configuration, plugins or cache.
type helmEnv struct {
	major    int
	bin      string // the helm3 or helm4 binary
	home     string // everything the environment writes lives under it
	checkout string // the helm-canary checkout the plugin is installed from
	env      []string
}

// newHelmEnv is a Helm environment with the plugin installed as the README says:
// `helm plugin install <checkout>`, and for Helm 4 also the post-renderer plugin.
func newHelmEnv(t *testing.T, major int) *helmEnv {
	t.Helper()
	h := newBareHelmEnv(t, major)
	h.mustRun(t, "plugin", "install", h.checkout)
	if major == 4 {
		h.mustRun(t, "plugin", "install", filepath.Join(h.checkout, "plugins", postRendererPlugin))
	}
	return h
}

// newBareHelmEnv is a Helm environment without plugins.
func newBareHelmEnv(t *testing.T, major int) *helmEnv {
	t.Helper()
	checkout := pluginCheckout(t)
	home := t.TempDir()
	h := &helmEnv{
		major:    major,
		bin:      filepath.Join(cluster.BinDir(), fmt.Sprintf("helm%d", major)),
		home:     home,
		checkout: checkout,
	}
	h.env = append(localcluster.ToolEnv(), testhelm.HomeEnv(home, cluster.Kubeconfig())...)
	return h
}

// with returns a copy of h whose commands also get the given NAME=VALUE variables
// (later ones win).
func (h *helmEnv) with(vars ...string) *helmEnv {
	c := *h
	c.env = append(append([]string(nil), h.env...), vars...)
	return &c
}

// postRendererLog is where canary-postrenderer appends the post-renderer's stderr
// by default: ${XDG_STATE_HOME:-~/.local/state}/helm-canary/postrender.log.
func (h *helmEnv) postRendererLog() string {
	return filepath.Join(h.home, "state", "helm-canary", "postrender.log")
}

// postRenderer returns the flags that run `helm-canary render args...` as this Helm
// version's post-renderer, spelled the way the README tells users to.
func (h *helmEnv) postRenderer(args ...string) []string {
	var flags []string
	if h.major == 3 {
		// Helm 3 runs an executable, so its first argument is the sub-command.
		flags = []string{"--post-renderer", filepath.Join(h.checkout, "bin", "helm-canary"), "--post-renderer-args", "render"}
	} else {
		// Helm 4 runs a postrenderer/v1 plugin, whose wrapper adds `render`.
		flags = []string{"--post-renderer", postRendererPlugin}
	}
	for _, a := range args {
		flags = append(flags, "--post-renderer-args", a)
	}
	return flags
}

// run runs helm with args; err describes a failure with its stderr.
func (h *helmEnv) run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return h.runStdin(t, nil, args...)
}

func (h *helmEnv) runStdin(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := testhelm.Cmd{Name: fmt.Sprintf("helm%d", h.major), Bin: h.bin, Dir: h.home, Env: h.env, Timeout: helmTimeout}
	stdout, stderr, err = cmd.Run(t, stdin, args...)
	if err == nil {
		checkIstio(t, args)
	}
	return stdout, stderr, err
}

// mustRun is run that fails the test on error and returns stdout.
func (h *helmEnv) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	stdout, _, err := h.run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout
}

// historyEntry is one line of `helm history -o json`.
type historyEntry struct {
	Revision int    `json:"revision"`
	Status   string `json:"status"`
}

// lastRevision is the newest entry of the release's history.
func (h *helmEnv) lastRevision(t *testing.T, release, namespace string) historyEntry {
	t.Helper()
	out := h.mustRun(t, "history", release, "-n", namespace, "-o", "json")
	var history []historyEntry
	if err := json.Unmarshal([]byte(out), &history); err != nil {
		t.Fatalf("helm%d history %s: %v\n%s", h.major, release, err, out)
	}
	if len(history) == 0 {
		t.Fatalf("helm%d history %s: empty", h.major, release)
	}
	return history[len(history)-1]
}
