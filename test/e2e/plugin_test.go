package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/helm-canary/helm-canary/internal/testhelm"
)

// TestPluginInstall installs the plugins the way the README says, with each Helm
// version, and checks what each version then sees.
func TestPluginInstall(t *testing.T) {
	version := pluginVersion(t, "plugin.yaml")
	// Both plugins are released together: one version.
	if v := pluginVersion(t, filepath.Join("plugins", postRendererPlugin, "plugin.yaml")); v != version {
		t.Errorf("plugins/%s/plugin.yaml has version %s, plugin.yaml %s: keep them equal", postRendererPlugin, v, version)
	}

	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			h := newHelmEnv(t, major)
			stdout, stderr, err := h.run(t, "plugin", "list")
			if err != nil || stderr != "" {
				t.Fatalf("plugin list: %v\nstderr:\n%s", err, stderr)
			}
			list := pluginList(stdout)
			if _, ok := list["canary"]; !ok {
				t.Errorf("plugin list has no canary:\n%s", stdout)
			}
			_, hasPostRenderer := list[postRendererPlugin]
			if major == 3 && hasPostRenderer {
				t.Errorf("Helm 3 lists %s, which must never be where Helm 3 looks:\n%s", postRendererPlugin, stdout)
			}
			if major == 4 {
				// The legacy plugin.yaml is a cli/v1 plugin to Helm 4.
				if !strings.Contains(list["canary"], "cli/v1") {
					t.Errorf("Helm 4 does not load canary as a cli/v1 plugin:\n%s", stdout)
				}
				if !strings.Contains(list[postRendererPlugin], "postrenderer/v1") {
					t.Errorf("Helm 4 does not list %s as a postrenderer/v1 plugin:\n%s", postRendererPlugin, stdout)
				}
			}

			// The plugin command runs the binary the install hook built, with the
			// version of plugin.yaml.
			if out := h.mustRun(t, "canary", "--version"); !strings.Contains(out, " "+version) {
				t.Errorf("helm canary --version: %q, want version %s (plugin.yaml)", out, version)
			}
			// Arguments and stdin reach it through the plugin.
			manifests := h.mustRun(t, "template", "pp", filepath.Join(h.checkout, "examples", "productpage"))
			out, _, err := h.runStdin(t, strings.NewReader(manifests), "canary", "render", "--stage", "10")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"name: productpage-canary", "kind: VirtualService", "weight: 90"} {
				if !strings.Contains(out, want) {
					t.Errorf("helm canary render --stage 10 output lacks %q:\n%s", want, out)
				}
			}
		})
	}

	// One account with both Helm versions shares one plugins directory by default
	// (~/.local/share/helm/plugins). Helm 3 refuses a v1 plugin.yaml there and then
	// loads no plugin at all, so canary-postrenderer goes to a directory of its own
	// that only Helm 4 is told about (a recipe for checkouts; the README's gives Helm 4
	// a data home of its own):
	//   HELM_DATA_HOME=~/.local/share/helm4 helm4 plugin install <repo>/plugins/canary-postrenderer
	//   alias helm4='HELM_PLUGINS=$HOME/.local/share/helm/plugins:$HOME/.local/share/helm4/plugins helm4'
	t.Run("helm3 and helm4 on one account", func(t *testing.T) {
		t.Parallel()
		h3 := newBareHelmEnv(t, 3)
		shared := filepath.Join(h3.home, "data")
		h4 := newBareHelmEnv(t, 4).with("HELM_DATA_HOME=" + shared)
		h3.mustRun(t, "plugin", "install", h3.checkout)
		helm4Only := filepath.Join(h4.home, "helm4-data")
		h4.with("HELM_DATA_HOME="+helm4Only).mustRun(t, "plugin", "install", filepath.Join(h4.checkout, "plugins", postRendererPlugin))
		h4 = h4.with("HELM_PLUGINS=" + filepath.Join(shared, "plugins") + string(os.PathListSeparator) + filepath.Join(helm4Only, "plugins"))

		stdout, stderr, err := h3.run(t, "plugin", "list")
		if err != nil || stderr != "" || !strings.Contains(stdout, "canary") {
			t.Errorf("Helm 3 plugin list: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		}
		list := pluginList(h4.mustRun(t, "plugin", "list"))
		if _, ok := list["canary"]; !ok {
			t.Errorf("Helm 4 plugin list has no canary: %v", list)
		}
		if _, ok := list[postRendererPlugin]; !ok {
			t.Errorf("Helm 4 plugin list has no %s: %v", postRendererPlugin, list)
		}
		out := h4.mustRun(t, append([]string{"template", "pp", filepath.Join(h4.checkout, "examples", "productpage")}, h4.postRenderer("--stage=10")...)...)
		if !strings.Contains(out, "name: productpage-canary") {
			t.Errorf("helm4 template with --post-renderer %s did not post-render:\n%s", postRendererPlugin, out)
		}
	})

	// Helm 4 gives install hooks HELM_PLUGIN_NAME and HELM_PLUGIN_DIR and no other
	// HELM_* variable: the hook must build with nothing else.
	t.Run("install hook builds bin/helm-canary", func(t *testing.T) {
		t.Parallel()
		h := newBareHelmEnv(t, 4)
		h.checkout = freshCheckout(t)
		stdout := h.mustRun(t, "plugin", "install", h.checkout)
		if !strings.Contains(stdout, "building") {
			t.Errorf("the install hook printed no progress:\n%s", stdout)
		}
		if _, err := os.Stat(filepath.Join(h.checkout, "bin", "helm-canary")); err != nil {
			t.Fatalf("after plugin install: %v", err)
		}
		if out := h.mustRun(t, "canary", "--version"); !strings.Contains(out, " "+version) {
			t.Errorf("helm canary --version: %q, want version %s (plugin.yaml)", out, version)
		}
	})

	t.Run("install hook without Go", func(t *testing.T) {
		t.Parallel()
		h := newBareHelmEnv(t, 4)
		h.checkout = freshCheckout(t)
		h = h.with("PATH=" + pathWithoutGo(t))
		stdout, stderr, err := h.run(t, "plugin", "install", h.checkout)
		if err == nil {
			t.Fatalf("plugin install without Go succeeded, want a failure; stdout:\n%s", stdout)
		}
		if !strings.Contains(stderr, "Go is not installed") {
			t.Errorf("plugin install without Go: stderr does not say why:\n%s", stderr)
		}
	})
}

// pluginVersion is the version of a plugin.yaml of the checkout; the root one's is
// the one the binary must report.
func pluginVersion(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(pluginCheckout(t), path))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := yaml.Unmarshal(data, &meta); err != nil || meta.Version == "" {
		t.Fatalf("%s version: %q, %v", path, meta.Version, err)
	}
	return meta.Version
}

// pluginList maps each plugin name of `helm plugin list` to its whole line.
func pluginList(out string) map[string]string {
	list := map[string]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if fields := strings.Fields(line); i > 0 && len(fields) > 0 {
			list[fields[0]] = line
		}
	}
	return list
}

// freshCheckout is a copy of the plugin checkout without bin/.
func freshCheckout(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "helm-canary")
	if err := testhelm.CopyCheckout(pluginCheckout(t), dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pathWithoutGo is $PATH without the directories that hold a `go` command.
func pathWithoutGo(t *testing.T) string {
	t.Helper()
	var dirs []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			continue
		}
		dirs = append(dirs, dir)
	}
	return strings.Join(dirs, string(os.PathListSeparator))
}
