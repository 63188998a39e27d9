package e2e

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
)

// TestStrictSchemaEveryStage: test/charts/strict's values.schema.json forbids
// unknown top-level keys, as cert-manager's does. The release walks every stage
// (the state in a canary: block the schema does not know, visible in helm get
// values and kept by Helm's history), and values the schema refuses are still
// refused, leaving the release unchanged.
func TestStrictSchemaEveryStage(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := filepath.Join(h.checkout, "test", "charts", "strict")
		const name = "api-strict"
		steps := []struct {
			stage string
			args  []string
		}{
			{"stable", []string{"stable", "api", chart, "--install", "--set-string", "image.tag=83"}},
			{"10", []string{"10", "api", "--set-string", "image.tag=84"}},
			{"90", []string{"90", "api"}},
			{"100", []string{"100", "api"}},
			{"swap", []string{"swap", "api"}},
			{"final", []string{"final", "api", "--drain-time", "0s"}},
			{"preview", []string{"preview", "api", "--set-string", "image.tag=85"}},
			{"stable", []string{"stable", "api"}},
		}
		at10 := 0 // the revision stage 10 ends at (its warm-up is the one before)
		for _, s := range steps {
			h.stage(t, ns, s.args...)
			if s.stage == "10" {
				at10 = h.lastRevision(t, "api", ns).Revision
			}
			values := h.releaseValues(t, "api", ns)
			if got := valueAt(values, "canary.stage"); got != s.stage {
				t.Errorf("after stage %s: helm get values: canary.stage %q; values %v", s.stage, got, values)
			}
			if s.stage == "preview" {
				continue // no weighted route to the canary; only matching requests reach it
			}
			got := getRouteWeights(t, ns, name)
			if want := weightsOf(t, s.stage); !maps.Equal(got, want) && !(s.stage == "stable" && maps.Equal(got, map[string]int64{"": 100})) {
				t.Errorf("after stage %s: VirtualService %s routes %v, want %v", s.stage, name, got, want)
			}
		}
		// After final 84 is stable; the rollback from preview returns to it.
		wantImages(t, name+" after the walk", getDeployment(t, ns, name), productpageImage+":84")
		wantReplicas(t, name+"-canary after the walk", getDeployment(t, ns, name+"-canary"), 0)

		// The schema still applies to the user's values: nothing is applied.
		before := storedRevisions(t, "api", ns)
		for _, bad := range [][]string{{"--set", "bogus=1"}, {"--set", "image.registry=quay.io"}, {"--set", "replicaCount=two"}} {
			_, stderr, err := h.run(t, append([]string{"canary", "stage", "10", "api", "-n", ns}, bad...)...)
			if err == nil || !strings.Contains(stderr, "schema") {
				t.Errorf("stage 10 %s: %v, want the schema's refusal:\n%s", strings.Join(bad, " "), err, stderr)
			}
		}
		if after := storedRevisions(t, "api", ns); !maps.Equal(before, after) {
			t.Errorf("refused commands changed the release's revisions: %v, before %v", after, before)
		}
		// Helm's own rollback keeps the state with the values.
		h.mustRun(t, "rollback", "api", fmt.Sprint(at10), "-n", ns)
		if got := valueAt(h.releaseValues(t, "api", ns), "canary.stage"); got != "10" {
			t.Errorf("after helm rollback api %d: canary.stage %q, want 10", at10, got)
		}
		h.stage(t, ns, "stable", "api")
		wantImages(t, name+" after stage stable", getDeployment(t, ns, name), productpageImage+":84")
	})
}
