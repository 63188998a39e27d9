package libchart

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/lint/support"

	"github.com/helm-canary/helm-canary/internal/istiocheck"
	"github.com/helm-canary/helm-canary/internal/localcluster"
	"github.com/helm-canary/helm-canary/internal/testhelm"
)

// helmTimeout bounds one helm command; against the local API server an upgrade takes
// about a second.
const helmTimeout = 2 * time.Minute

// tool renders and lints charts: the Helm SDK (always), or a real helm binary.
type tool struct {
	name string // "sdk", "helm3", "helm4"
	bin  string // the binary; empty for the SDK
	env  []string
}

// tools are the ways this run renders: the SDK, plus helm 3 and helm 4 unless -short.
func tools(t *testing.T) []tool {
	t.Helper()
	out := []tool{{name: "sdk"}}
	if testing.Short() {
		return out
	}
	return append(out, helmCLI(t, 3), helmCLI(t, 4))
}

// helmCLI is helm 3 or 4 with a Helm home of its own under the run's scratch
// directory, and the local cluster's kubeconfig: nothing of the user's Helm
// configuration, plugins or repositories is read or written.
func helmCLI(t *testing.T, major int) tool {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the helm binaries; not in -short mode")
	}
	if cluster == nil {
		t.Fatal("no cluster: TestMain did not start one")
	}
	home := filepath.Join(scratch, fmt.Sprintf("helm%d", major))
	env := append(localcluster.ToolEnv(), testhelm.HomeEnv(home, cluster.Kubeconfig())...)
	return tool{name: fmt.Sprintf("helm%d", major), bin: filepath.Join(cluster.BinDir(), fmt.Sprintf("helm%d", major)), env: env}
}

// run runs the binary; err carries stderr.
func (tl tool) run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := testhelm.Cmd{Name: tl.name, Bin: tl.bin, Env: tl.env, Timeout: helmTimeout}
	return cmd.Run(t, nil, args...)
}

func (tl tool) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := tl.run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// renderArgs is what one `helm template` gets besides the chart.
type renderArgs struct {
	release, namespace string
	valueFiles         []string
	sets               []string // each one --set argument, comma-separated pairs allowed
}

// template renders chart like `helm template` and returns the manifest; err is
// Helm's error (schema, template failure) in Helm's words.
func (tl tool) template(t *testing.T, chart string, a renderArgs) (string, error) {
	t.Helper()
	if a.release == "" {
		a.release = "productpage"
	}
	if a.namespace == "" {
		a.namespace = "shop"
	}
	if tl.bin == "" {
		return sdkTemplate(chart, a)
	}
	args := []string{"template", a.release, chart, "--namespace", a.namespace}
	for _, f := range a.valueFiles {
		args = append(args, "--values", f)
	}
	for _, s := range a.sets {
		args = append(args, "--set", s)
	}
	out, _, err := tl.run(t, args...)
	return out, err
}

func (tl tool) mustTemplate(t *testing.T, chart string, a renderArgs) string {
	t.Helper()
	out, err := tl.template(t, chart, a)
	if err != nil {
		t.Fatalf("%s template %s %v: %v", tl.name, chart, a.sets, err)
	}
	// Istio's own validation and analyzers on what the chart renders; once per
	// render (the tests compare the helm binaries' output with the SDK's).
	if tl.name == "sdk" && !testing.Short() {
		ns := a.namespace
		if ns == "" {
			ns = "shop" // template's default
		}
		istiocheck.Require(t, fmt.Sprintf("helm template %s %v", chart, a.sets), []byte(out), ns)
	}
	return out
}

// sdkTemplate is `helm template` through the Helm 3 SDK, as the CLI does it.
func sdkTemplate(chart string, a renderArgs) (string, error) {
	ch, err := loader.Load(chart)
	if err != nil {
		return "", err
	}
	if err := action.CheckDependencies(ch, ch.Metadata.Dependencies); err != nil {
		return "", err
	}
	opts := values.Options{ValueFiles: a.valueFiles, Values: a.sets}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		return "", err
	}
	install := action.NewInstall(&action.Configuration{})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = a.release, a.namespace
	install.KubeVersion = &chartutil.KubeVersion{Version: "v1.34.0", Major: "1", Minor: "34"}
	rel, err := install.Run(ch, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// lint runs helm lint on chart with the given --set arguments. It fails when Helm
// says anything at all: errors, warnings, or informational messages.
func (tl tool) lint(t *testing.T, chart string, sets ...string) (string, error) {
	t.Helper()
	if tl.bin == "" {
		return sdkLint(chart, sets)
	}
	args := []string{"lint", "--strict", chart}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, _, err := tl.run(t, args...)
	if err != nil {
		return out, err
	}
	for _, noise := range []string{"[INFO]", "[WARNING]", "[ERROR]"} {
		if strings.Contains(out, noise) {
			return out, fmt.Errorf("%s lint %s %v says %s:\n%s", tl.name, chart, sets, noise, out)
		}
	}
	return out, nil
}

func sdkLint(chart string, sets []string) (string, error) {
	opts := values.Options{Values: sets}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		return "", err
	}
	lint := action.NewLint()
	lint.Strict = true
	lint.Namespace = "shop"
	res := lint.Run([]string{chart}, vals)
	var msgs []string
	for _, m := range res.Messages {
		msgs = append(msgs, m.Error())
	}
	out := strings.Join(msgs, "\n")
	for _, m := range res.Messages {
		if m.Severity >= support.InfoSev {
			return out, fmt.Errorf("sdk lint %s %v: %s", chart, sets, out)
		}
	}
	if len(res.Errors) > 0 {
		return out, fmt.Errorf("sdk lint %s %v: %w", chart, sets, errors.Join(res.Errors...))
	}
	return out, nil
}
