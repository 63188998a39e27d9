package renderer

import (
	"strings"
	"testing"

	"github.com/helm-canary/helm-canary/internal/benchstream"
)

// YAML that is valid but unusual must never make a Deployment silently skipped or
// read wrong: aliases and merge keys are resolved, List items and duplicate keys are
// refused, documents started with "--- !!map" are documents.
func TestYAMLShapes(t *testing.T) {
	t.Run("aliases in labels and selector", func(t *testing.T) {
		in := strings.Replace(appAt("2.0"), "  labels:\n    app: cart\nspec:", "  labels: &labels\n    app: cart\nspec:", 1)
		in = strings.Replace(in, "    matchLabels:\n      app: cart\n", "    matchLabels: *labels\n", 1)
		in = strings.Replace(in, "      labels:\n        app: cart\n", "      labels: *labels\n", 1)
		in = strings.Replace(in, "  selector:\n    app: cart\n", "  selector:\n    app: &app cart\n", 1)
		out := render(t, in, Options{Stage: mustStage(t, "10")})
		canary := find(t, out, "Deployment", "cart-canary")
		wantField(t, canary, "spec.selector.matchLabels", "app: cart\nhelm-canary.io/track: canary")
		wantField(t, find(t, out, "Deployment", "cart"), "spec.template.metadata.labels", "app: cart\nhelm-canary.io/track: production")
		wantField(t, find(t, out, "Deployment", "cart"), "spec.selector.matchLabels", "app: cart")
		wantField(t, find(t, out, "DestinationRule", "cart-api"), "spec.subsets[1].labels", "app: cart\nhelm-canary.io/track: canary")
	})
	t.Run("merge keys", func(t *testing.T) {
		in := strings.Replace(appAt("2.0"), "  labels:\n    app: cart\nspec:", "  labels: &labels\n    app: cart\nspec:", 1)
		in = strings.Replace(in, "      labels:\n        app: cart\n", "      labels:\n        <<: *labels\n        tier: web\n", 1)
		out := render(t, in, Options{Stage: mustStage(t, "10")})
		wantField(t, find(t, out, "Deployment", "cart-canary"), "spec.template.metadata.labels", "app: cart\nhelm-canary.io/track: canary\ntier: web\nversion: canary")
		if strings.Contains(out, "<<") {
			t.Errorf("a merge key survived in the output:\n%s", out)
		}
	})
	t.Run("duplicate keys", func(t *testing.T) {
		in := strings.Replace(appAt("2.0"), "  replicas: 3\n", "  replicas: 3\n  replicas: 1\n", 1)
		err := renderErr(t, in, Options{Stage: mustStage(t, "10")})
		for _, want := range []string{"Deployment cart", `"replicas"`, "twice"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})
	t.Run("kind: List with a Deployment", func(t *testing.T) {
		list := "---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: worker}\n  spec: {}\n"
		err := renderErr(t, appAt("2.0")+list, Options{Stage: mustStage(t, "10")})
		for _, want := range []string{"List", "Deployment worker", "items[0]", "separate documents"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		// A List of other objects passes through.
		cms := "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n"
		if out := render(t, appAt("2.0")+cms, Options{Stage: mustStage(t, "10")}); !strings.Contains(out, cms) {
			t.Errorf("the List changed:\n%s", out)
		}
	})
	t.Run("--- !!map separators", func(t *testing.T) {
		// kubectl and Helm's apply reject content after ---; the Deployment after such
		// a line used to be read as part of the document before it (or not at all).
		cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
		for _, in := range []string{
			cm + strings.Replace(appAt("2.0"), "---\n# Source: shop/templates/cart.yaml\napiVersion: apps/v1", "--- !!map\napiVersion: apps/v1", 1),
			strings.Replace(appAt("2.0"), "---\n", "--- !!map\n", 1),
		} {
			err := renderErr(t, in, Options{Stage: mustStage(t, "10")})
			for _, want := range []string{`"--- !!map"`, "invalid Yaml document separator", "document "} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		}
	})
}

// TestStreamShapesRenderAlike: the benchmark's flow-style and comments+CRLF streams
// hold the block stream's objects written another way, so they must render to the
// same objects (compared after parsing), at every stage and with --workload. Each
// rendered stream renders to itself again, and the Deployments are edited in
// place, not re-encoded: every byte of an input Deployment is in its production
// Deployment, in order, and a line added to a CRLF template ends in CRLF too.
func TestStreamShapesRenderAlike(t *testing.T) {
	const n = 24
	block := string(benchstream.Bytes(n))
	sets := map[string]Options{
		"10":         {Stage: mustStage(t, "10")},
		"10-three":   {Stage: mustStage(t, "10"), Workloads: []string{benchstream.Name(2), benchstream.Name(7), benchstream.Name(12)}},
		"stable":     {Stage: mustStage(t, "stable")},
		"90":         {Stage: mustStage(t, "90")},
		"swap":       {Stage: mustStage(t, "swap")},
		"final":      {Stage: mustStage(t, "final")},
		"final-wait": {Stage: mustStage(t, "final"), Draining: true},
	}
	for name, opts := range sets {
		want := objects(t, render(t, block, opts))
		for _, shape := range benchstream.Shapes[1:] {
			in := string(benchstream.ShapeBytes(n, shape))
			encodedSplits = 0
			out := render(t, in, opts)
			if encodedSplits > 0 {
				t.Errorf("%s/%s: %d Deployments re-encoded, not edited in place", shape, name, encodedSplits)
			}
			got := objects(t, out)
			if len(got) != len(want) {
				t.Fatalf("%s/%s: %d objects, block renders %d", shape, name, len(got), len(want))
			}
			for i := range got {
				if !equalNode(got[i].YNode(), want[i].YNode()) {
					t.Errorf("%s/%s: object %d is\n%s\nblock renders\n%s", shape, name, i+1, got[i].MustString(), want[i].MustString())
				}
			}
			if again := render(t, out, opts); again != out {
				t.Errorf("%s/%s: rendering the output again changes it", shape, name)
			}
			checkSpliced(t, string(shape)+"/"+name, in, out)
		}
	}
}

// checkSpliced checks that every Deployment of in is in out as its bytes plus
// insertions (the stage annotation aside, which a canary carries), and that each
// line of a production Deployment ends as the template's lines do.
func checkSpliced(t *testing.T, what, in, out string) {
	t.Helper()
	outDocs := map[string]*document{}
	for _, d := range splitDocuments([]byte(out)) {
		if d.kind == "Deployment" {
			if _, err := d.parse(); err != nil {
				t.Fatal(err)
			}
			outDocs[d.name] = d
		}
	}
	for _, d := range splitDocuments([]byte(in)) {
		if d.kind != "Deployment" {
			continue
		}
		if _, err := d.parse(); err != nil {
			t.Fatal(err)
		}
		o := outDocs[d.name]
		if o == nil {
			t.Fatalf("%s: Deployment %s is not in the output", what, d.name)
		}
		if !isSubsequence(string(d.body), string(o.body)) {
			t.Errorf("%s: Deployment %s was rewritten, not edited:\n%s\nfrom\n%s", what, d.name, o.body, d.body)
			continue
		}
		if crlf := strings.Contains(string(d.body), "\r\n"); crlf {
			// The last line ends in LF alone: Helm trims the template and adds "\n".
			lines := strings.SplitAfter(strings.TrimSuffix(string(o.body), "\n"), "\n")
			for _, l := range lines[:len(lines)-1] {
				if !strings.HasSuffix(l, "\r\n") {
					t.Errorf("%s: Deployment %s has a line without CR: %q", what, d.name, l)
					break
				}
			}
		}
	}
}

// isSubsequence reports whether a's bytes all appear in b, in order.
func isSubsequence(a, b string) bool {
	j := 0
	for i := 0; i < len(b) && j < len(a); i++ {
		if b[i] == a[j] {
			j++
		}
	}
	return j == len(a)
}
