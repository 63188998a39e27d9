package renderer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/helm-canary/helm-canary/stages"
)

// idempotenceInputs are the golden inputs (real Helm 3 and 4 output) and the fuzz
// seeds: streams of the shapes users pipe in.
func idempotenceInputs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{
		"app":          []byte(appAt("2.0")),
		"reviews":      []byte(reviews),
		"flow-service": []byte("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\"},\"spec\":{\"selector\":{\"a\":\"b\"}}}"),
	}
	paths, err := filepath.Glob("../test/golden/inputs/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = data
	}
	return out
}

// TestRenderIsIdempotent: rendering an already rendered stream (helm get manifest
// piped back in, a canary-lib chart through the post-renderer) with the same
// options gives the same bytes: render(render(x)) == render(x).
func TestRenderIsIdempotent(t *testing.T) {
	one := int32(1)
	sets := map[string]func(x []byte) Options{}
	for _, s := range []string{"stable", "0", "10", "90", "100", "swap", "final"} {
		st := mustStage(t, s)
		sets[s] = func([]byte) Options { return Options{Stage: st} }
		// Pinned by a production manifest: the same stream rendered at stable, as
		// helm canary stage would have deployed it.
		sets[s+"-pinned"] = func(x []byte) Options {
			res, err := Render(x, Options{Stage: stages.Stable})
			if err != nil {
				return Options{Stage: st}
			}
			return Options{Stage: st, ProductionManifest: res.Manifest}
		}
	}
	sets["final-draining"] = func([]byte) Options { return Options{Stage: stages.Final, Draining: true} }
	sets["10-extras"] = func([]byte) Options {
		o := Options{Stage: mustStage(t, "10"), CanaryReplicas: &one, PerWorkload: map[string]WorkloadOptions{}}
		for _, name := range []string{"cart", "productpage", "details", "ratings", "reviews-v1", "app-a", "app-b", "app-c"} {
			o.PerWorkload[name] = WorkloadOptions{Stage: mustStage(t, "10"),
				Sticky: &Sticky{Cookie: "canary", MaxAge: 60}, Mirror: &Mirror{Percent: 5},
				UserPercent: &UserPercent{Header: "x-user"}, Gateway: &Gateway{Name: "gw", Hosts: []string{"shop.example.com"}, Create: true}}
		}
		return o
	}
	for name, in := range idempotenceInputs(t) {
		for set, opts := range sets {
			t.Run(fmt.Sprintf("%s/%s", name, set), func(t *testing.T) {
				o := opts(in)
				once, err := Render(in, o)
				if err != nil {
					return // refused inputs have no output to render again
				}
				twice, err := Render(once.Manifest, o)
				if err != nil {
					t.Fatalf("rendering the output again fails: %v\nfirst output:\n%s", err, once.Manifest)
				}
				if !bytes.Equal(twice.Manifest, once.Manifest) {
					t.Fatalf("render(render(x)) != render(x):\n%s", lineDiffString(string(once.Manifest), string(twice.Manifest)))
				}
			})
		}
	}
}

func lineDiffString(want, got string) string {
	w, g := bytes.Split([]byte(want), []byte("\n")), bytes.Split([]byte(got), []byte("\n"))
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl []byte
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if !bytes.Equal(wl, gl) {
			return fmt.Sprintf("line %d:\n  once:  %q\n  twice: %q", i+1, wl, gl)
		}
	}
	return "(same lines, different bytes)"
}
