package renderer

import (
	"strings"
	"testing"
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
		wantField(t, find(t, out, "Deployment", "cart-canary"), "spec.template.metadata.labels", "app: cart\nhelm-canary.io/track: canary\ntier: web")
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
