package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/kustomize/kyaml/kio"
)

var deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// postRenderMessage is what the post-renderer wrote to stderr: Helm 3 shows it,
// Helm 4 discards it and the canary-postrenderer wrapper logs it.
func postRenderMessage(t *testing.T, h *helmEnv, stderr string) string {
	t.Helper()
	if h.major == 3 {
		return stderr
	}
	log, err := os.ReadFile(h.postRendererLog())
	if err != nil {
		t.Fatalf("the post-renderer log: %v", err)
	}
	return string(log)
}

// TestStatefulWorkloads: a chart with a bitnami-style database on a ReadWriteOnce
// claim and a grafana-style dashboard with strategy Recreate, through the real
// helm 3 and 4 as post-renderer. By default only the stateless tier is canaried and
// the others are named in a warning; naming the database is refused and changes
// nothing; --force-stateful canaries it.
func TestStatefulWorkloads(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := filepath.Join(h.checkout, "test", "charts", "stateful")
		upgrade := func(args ...string) []string {
			return append([]string{"upgrade", "--install", "st", chart, "-n", ns}, h.postRenderer(args...)...)
		}
		h.mustRun(t, upgrade("--stage=10")...)
		getDeployment(t, ns, "st-web-canary")
		absent(t, deploymentsGVR, ns, "st-db-canary")
		absent(t, deploymentsGVR, ns, "st-dashboard-canary")
		// Helm 3 shows a post-renderer's stderr only when it fails: the warnings, as
		// `helm template | helm-canary render` prints them.
		template := exec.Command(h.bin, "template", "st", chart, "-n", ns)
		template.Env = h.env
		manifest, err := template.Output()
		if err != nil {
			t.Fatalf("helm%d template: %v", h.major, err)
		}
		render := exec.Command(filepath.Join(h.checkout, "bin", "helm-canary"), "render", "--stage=10")
		render.Stdin = bytes.NewReader(manifest)
		var stderr bytes.Buffer
		render.Stderr = &stderr
		if err := render.Run(); err != nil {
			t.Fatalf("helm-canary render: %v\n%s", err, stderr.String())
		}
		msg := stderr.String()
		for _, want := range []string{"Deployment st-db is not canaried", "ReadWriteOnce PersistentVolumeClaim st-db", "Deployment st-dashboard is not canaried", "strategy Recreate"} {
			if !strings.Contains(msg, want) {
				t.Errorf("the warnings do not say %q:\n%s", want, msg)
			}
		}

		before := h.lastRevision(t, "st", ns)
		_, helmStderr, err := h.run(t, upgrade("--stage=10", "--workload=st-db")...)
		if err == nil {
			t.Fatal("--workload st-db (stateful) succeeded, want it refused")
		}
		if msg := postRenderMessage(t, h, helmStderr); !strings.Contains(msg, "Deployment st-db is stateful") || !strings.Contains(msg, "--force-stateful") {
			t.Errorf("the refusal does not say why and how to force it:\n%s", msg)
		}
		if after := h.lastRevision(t, "st", ns); after != before {
			t.Errorf("the refused upgrade made revision %+v (was %+v)", after, before)
		}
		absent(t, deploymentsGVR, ns, "st-db-canary")

		h.mustRun(t, upgrade("--stage=10", "--workload=st-db", "--force-stateful")...)
		wantLabel(t, "st-db-canary selector", getDeployment(t, ns, "st-db-canary").Selector, trackLabel, "canary")
	})
}

// TestRenderingARenderedRelease: `helm get manifest R | helm-canary render` and a
// canary-lib chart through the post-renderer are streams that are canaried already.
// Rendering them gives one canary per Deployment, never a second, and rendering the
// output again changes nothing.
func TestRenderingARenderedRelease(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "10")
		manifest := h.mustRun(t, "get", "manifest", "pp", "-n", ns)
		bin := filepath.Join(h.checkout, "bin", "helm-canary")
		renderCLI := func(in string, args ...string) string {
			t.Helper()
			cmd := exec.Command(bin, append([]string{"render"}, args...)...)
			cmd.Stdin = strings.NewReader(in)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("helm-canary render %v: %v\n%s", args, err, errb.String())
			}
			return out.String()
		}
		for _, stage := range []string{"10", "90", "stable"} {
			once := renderCLI(manifest, "--stage", stage)
			unique(t, "helm get manifest | render --stage "+stage, once)
			if twice := renderCLI(once, "--stage", stage); twice != once {
				t.Errorf("render --stage %s is not idempotent on helm%d's manifest", stage, h.major)
			}
			if err := cluster.DryRunApply(t.Context(), ns, []byte(once)); err != nil {
				t.Errorf("the API server rejects helm get manifest | render --stage %s: %v", stage, err)
			}
		}
		// Stage 90 of the re-rendered release: the canary keeps 84, production 83.
		at90 := renderCLI(manifest, "--stage", "90")
		for _, want := range []string{productpageImage + ":83", productpageImage + ":84", "weight: 90", "weight: 10"} {
			if !strings.Contains(at90, want) {
				t.Errorf("helm get manifest | render --stage 90 lacks %q:\n%s", want, at90)
			}
		}

		// A chart that renders its canary itself (canary-lib), through the
		// post-renderer: the canary-lib objects are taken as the canary, not doubled.
		lib := h.mustRun(t, "template", "pl", h.chartDir(), "-n", ns, "--set", "canaryLib.enabled=true", "--set", "image.tag=84")
		out := renderCLI(lib, "--stage", "stable")
		unique(t, "canary-lib chart | render", out)
		if twice := renderCLI(out, "--stage", "stable"); twice != out {
			t.Errorf("render is not idempotent on the canary-lib chart's output")
		}
		libNS := newNamespace(t)
		h.mustRun(t, append([]string{"upgrade", "--install", "pl", h.chartDir(), "-n", libNS, "--set", "canaryLib.enabled=true", "--set", "image.tag=84"}, h.postRenderer("--stage=stable")...)...)
		unique(t, "helm get manifest pl", h.mustRun(t, "get", "manifest", "pl", "-n", libNS))
	})
}

// unique checks that no kind/namespace/name appears twice and that there is one
// canary Deployment per production Deployment.
func unique(t *testing.T, what, manifest string) {
	t.Helper()
	nodes, err := kio.FromBytes([]byte(manifest))
	if err != nil {
		t.Fatalf("%s does not parse: %v", what, err)
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		key := n.GetKind() + " " + n.GetNamespace() + "/" + n.GetName()
		if seen[key] {
			t.Errorf("%s: %s appears twice", what, key)
		}
		seen[key] = true
		if strings.HasSuffix(n.GetName(), "-canary-canary") {
			t.Errorf("%s: a canary of a canary, %s", what, key)
		}
	}
}

// TestSelectorChangeRefused: a chart version whose Deployment selector differs from
// the release's would fail at apply with "field is immutable"; helm canary stage
// refuses it up front and changes nothing.
func TestSelectorChangeRefused(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "stable")
		chart := filepath.Join(t.TempDir(), "productpage")
		if err := os.CopyFS(chart, os.DirFS(h.chartDir())); err != nil {
			t.Fatal(err)
		}
		dep := filepath.Join(chart, "templates", "deployment.yaml")
		data, err := os.ReadFile(dep)
		if err != nil {
			t.Fatal(err)
		}
		changed := strings.Replace(string(data), "    matchLabels:\n      app: {{ .Chart.Name }}\n", "    matchLabels:\n      app: {{ .Chart.Name }}\n      tier: web\n", 1)
		if changed == string(data) {
			t.Fatal("the selector of examples/productpage's Deployment is not where this test expects it")
		}
		changed = strings.Replace(changed, "      labels:\n", "      labels:\n        tier: web\n", 1)
		if err := os.WriteFile(dep, []byte(changed), 0o644); err != nil {
			t.Fatal(err)
		}
		refused(t, h, ns, []string{"canary", "stage", "-n", ns, "10", "pp", chart, "--set", "image.tag=84"},
			"Deployment productpage", "changes spec.selector", "immutable", "--cascade=orphan")
	})
}
