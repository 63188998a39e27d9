package renderer

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// versionChart is a chart with one Deployment "web" and a Service; each case
// changes where the chart puts a version label and what selects by it.
func versionChart(podLabels, selector, serviceSelector, extra string) string {
	return `# Source: web/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
` + serviceSelector + `  ports:
  - name: http
    port: 80
    targetPort: 8080
---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
` + selector + `  template:
    metadata:
      labels:
` + podLabels + `    spec:
      containers:
      - name: web
        image: repo/web:2.0
        ports:
        - containerPort: 8080
` + extra
}

const (
	appOnly      = "    matchLabels:\n      app: web\n"
	appSvc       = "    app: web\n"
	podApp       = "        app: web\n"
	podVersion   = "        app: web\n        version: v2\n"
	podK8s       = "        app.kubernetes.io/name: web\n        app: web\n        app.kubernetes.io/version: \"1.16.0\"\n"
	podBoth      = "        app: web\n        version: v2\n        app.kubernetes.io/version: \"1.16.0\"\n"
	podCanonical = "        app: web\n        service.istio.io/canonical-revision: rev-7\n"
)

// versionCases: where the chart's version label is and whether a selector reads
// it; want are the canary pods' version labels (nil: as rendered).
var versionCases = []struct {
	name                         string
	podLabels, selector, service string
	extra                        string
	want                         map[string]string
}{
	{"version label, selectors by app", podVersion, appOnly, appSvc, "", map[string]string{"version": "v2-canary"}},
	{"no version label", podApp, appOnly, appSvc, "", map[string]string{"version": "canary"}},
	{"helm create's app.kubernetes.io/version", podK8s, appOnly, appSvc, "", map[string]string{"app.kubernetes.io/version": "1.16.0-canary"}},
	{"both labels", podBoth, appOnly, appSvc, "", map[string]string{"version": "v2-canary", "app.kubernetes.io/version": "1.16.0-canary"}},
	{"Istio's canonical revision", podCanonical, appOnly, appSvc, "", map[string]string{"service.istio.io/canonical-revision": "rev-7-canary"}},
	{"version in the Deployment's selector (bookinfo)", podVersion, "    matchLabels:\n      app: web\n      version: v2\n", appSvc, "", nil},
	{"version in a matchExpressions selector", podVersion, appOnly + "    matchExpressions:\n    - {key: version, operator: In, values: [v1, v2]}\n", appSvc, "", nil},
	{"version in the Service's selector", podVersion, appOnly, appSvc + "    version: v2\n", "", nil},
	{"one label free, one in the selector", podBoth, "    matchLabels:\n      app: web\n      version: v2\n", appSvc, "", map[string]string{"app.kubernetes.io/version": "1.16.0-canary"}},
	{"a PodDisruptionBudget by version", podVersion, appOnly, appSvc,
		"---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      app: web\n      version: v2\n", nil},
	{"a PodDisruptionBudget of another app by version", podVersion, appOnly, appSvc,
		"---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: db\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      app: db\n      version: v2\n", map[string]string{"version": "v2-canary"}},
	{"an AuthorizationPolicy by version", podVersion, appOnly, appSvc,
		"---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels:\n      app: web\n      version: v2\n  action: ALLOW\n", nil},
	{"the chart's DestinationRule subsets by version", podVersion, appOnly, appSvc,
		"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: web\nspec:\n  host: web\n  subsets:\n  - name: v2\n    labels:\n      version: v2\n", nil},
	{"a value too long for the suffix", "        app: web\n        version: " + strings.Repeat("a", 60) + "\n", appOnly, appSvc, "", nil},
}

// The properties of the canary's version labels, at every stage: production's
// Deployment is byte for byte what it is without them (no production pod
// restarts); so is every other document but the canary Deployment; the canary's
// selector is within its pod labels; the version labels differ between production
// and canary pods exactly where no selector reads them; every Service that selects
// production's pods selects the canary's; the DestinationRule's subsets select by
// the Deployment's selector and the track label only.
func TestCanaryVersionLabels(t *testing.T) {
	for _, c := range versionCases {
		for _, stage := range []string{"stable", "10", "swap", "final"} {
			t.Run(c.name+"/"+stage, func(t *testing.T) {
				in := versionChart(c.podLabels, c.selector, c.service, c.extra)
				opts := Options{Stage: mustStage(t, stage), Workloads: []string{"web"}}
				canaryVersionsEnabled = true
				out := render(t, in, opts)
				canaryVersionsEnabled = false
				without := render(t, in, opts)
				canaryVersionsEnabled = true

				docs, plain := splitDocuments([]byte(out)), splitDocuments([]byte(without))
				if len(docs) != len(plain) {
					t.Fatalf("%d documents, %d without version labels", len(docs), len(plain))
				}
				for i := range docs {
					if string(docs[i].raw) != string(plain[i].raw) && !strings.Contains(string(docs[i].raw), "name: web-canary\n") {
						t.Errorf("document %d changed by the version labels:\n%s\nwithout:\n%s", i+1, docs[i].raw, plain[i].raw)
					}
				}

				production := find(t, out, "Deployment", "web")
				canary := find(t, out, "Deployment", "web-canary")
				prodLabels := labelsAt(t, production, "spec", "template", "metadata", "labels")
				canaryLabels := labelsAt(t, canary, "spec", "template", "metadata", "labels")
				if !selects(labelsAt(t, canary, "spec", "selector", "matchLabels"), canaryLabels) {
					t.Errorf("the canary's selector does not select its pods: %v", canaryLabels)
				}
				rendered := labelsAt(t, find(t, without, "Deployment", "web-canary"), "spec", "template", "metadata", "labels")
				for _, key := range VersionLabels {
					want, changed := c.want[key]
					if !changed {
						want = rendered[key]
					}
					if got := canaryLabels[key]; got != want {
						t.Errorf("canary pods' %s = %q, want %q", key, got, want)
					}
					if changed && prodLabels[key] == canaryLabels[key] {
						t.Errorf("%s is the same on production and canary pods: %q", key, prodLabels[key])
					}
				}
				if len(c.want) == 0 && !equalLabels(canaryLabels, rendered) {
					t.Errorf("a selector reads the version label, yet the canary's pod labels changed: %v, want %v", canaryLabels, rendered)
				}
				for _, svc := range objects(t, out) {
					if svc.GetKind() != "Service" {
						continue
					}
					sel := labelsAt(t, svc, "spec", "selector")
					if selects(sel, prodLabels) && !selects(sel, canaryLabels) {
						t.Errorf("Service %s selects production's pods and not the canary's: %v", svc.GetName(), canaryLabels)
					}
				}
				dr := find(t, out, "DestinationRule", "web")
				for _, s := range []int{0, 1} {
					sub := yamlLabels(t, dr, s)
					for k := range sub {
						if k != DefaultTrackLabel && labelsAt(t, canary, "spec", "selector", "matchLabels")[k] == "" {
							t.Errorf("subset %d selects by %s, which is neither the track label nor the Deployment's selector", s, k)
						}
					}
				}
			})
		}
	}
}

func labelsAt(t *testing.T, n *yaml.RNode, path ...string) map[string]string {
	t.Helper()
	return stringMapNode(lookup(n.YNode(), path...))
}

func yamlLabels(t *testing.T, dr *yaml.RNode, subset int) map[string]string {
	t.Helper()
	subs := lookup(dr.YNode(), "spec", "subsets")
	var ours []*yaml.Node
	for _, s := range subs.Content {
		if name := field(s, "name"); name != nil && (name.Value == SubsetProduction || name.Value == SubsetCanary) {
			ours = append(ours, s)
		}
	}
	if len(ours) != 2 {
		t.Fatalf("DestinationRule %s: %d helm-canary subsets", dr.GetName(), len(ours))
	}
	return stringMapNode(field(ours[subset], "labels"))
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A stream rendered before goes on from the canary's labels: rendered again at
// another stage the canary keeps its version labels (never v2-canary-canary), and
// at swap and final production takes the canary's pod template with the chart's
// own version labels, the one render added removed.
func TestCanaryVersionLabelsRerendered(t *testing.T) {
	for _, c := range []struct {
		podLabels string
		want      map[string]string // production's version labels after swap
	}{
		{podVersion, map[string]string{"version": "v2"}},
		{podApp, map[string]string{}},
		{podBoth, map[string]string{"version": "v2", "app.kubernetes.io/version": "1.16.0"}},
	} {
		in := versionChart(c.podLabels, appOnly, appSvc, "")
		at10 := render(t, in, Options{Stage: mustStage(t, "10")})
		again := render(t, at10, Options{Stage: mustStage(t, "90")})
		canary := labelsAt(t, find(t, again, "Deployment", "web-canary"), "spec", "template", "metadata", "labels")
		first := labelsAt(t, find(t, at10, "Deployment", "web-canary"), "spec", "template", "metadata", "labels")
		if !equalLabels(canary, first) {
			t.Errorf("rendered again at 90, the canary's pod labels %v, want %v (as at 10)", canary, first)
		}
		for _, stage := range []string{"swap", "final"} {
			out := render(t, again, Options{Stage: mustStage(t, stage)})
			production := labelsAt(t, find(t, out, "Deployment", "web"), "spec", "template", "metadata", "labels")
			for _, key := range VersionLabels {
				if got, want := production[key], c.want[key]; got != want {
					t.Errorf("%s: production's %s = %q, want the chart's %q (labels %v)", stage, key, got, want, production)
				}
			}
		}
	}
}

func TestCanaryVersion(t *testing.T) {
	for in, want := range map[string]string{"": "canary", "v2": "v2-canary", "1.16.0": "1.16.0-canary", "v2-canary": "v2-canary", "canary": "canary"} {
		if got, ok := canaryVersion(in); !ok || got != want {
			t.Errorf("canaryVersion(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := canaryVersion(strings.Repeat("a", 57)); ok {
		t.Error("a 57-character value with -canary would pass the 63-character limit")
	}
}

// canary.workloads.NAME.keepVersionLabels: true keeps the chart's version labels
// on the canary's pods, for a selector the render cannot see (a Service of another
// release selecting by version).
func TestKeepVersionLabels(t *testing.T) {
	c, err := ParseConfig([]byte("stage: \"10\"\nworkloads:\n  web:\n    keepVersionLabels: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	var opts Options
	if err := c.Apply(&opts); err != nil {
		t.Fatal(err)
	}
	for _, pod := range []string{podVersion, podApp} {
		out := render(t, versionChart(pod, appOnly, appSvc, ""), opts)
		got := labelsAt(t, find(t, out, "Deployment", "web-canary"), "spec", "template", "metadata", "labels")
		for _, key := range VersionLabels {
			if want := map[string]string{"version": map[bool]string{true: "v2"}[pod == podVersion]}[key]; got[key] != want {
				t.Errorf("keepVersionLabels: the canary's %s = %q, want the chart's %q", key, got[key], want)
			}
		}
	}
}
