package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestPluginWalk walks examples/productpage through seed 001 with `helm canary
// stage`, for Helm 3 and Helm 4, checking the live objects after every step.
func TestPluginWalk(t *testing.T) {
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			h := newHelmEnv(t, major)
			ns := newNamespace(t)
			chart := filepath.Join(h.checkout, "examples", "productpage")
			steps := []struct {
				args                   []string
				production, canary     string // image tags
				prodReplicas, canaryRp int32
				weights                map[string]int64
			}{
				{[]string{"stable", "pp", chart, "--install", "--set", "image.tag=83"}, "83", "83", 2, 0, map[string]int64{"": 100}},
				{[]string{"10", "pp", "--set", "image.tag=84"}, "83", "84", 2, 2, map[string]int64{"production": 90, "canary": 10}},
				{[]string{"90", "pp"}, "83", "84", 2, 2, map[string]int64{"production": 10, "canary": 90}},
				{[]string{"100", "pp"}, "83", "84", 2, 2, map[string]int64{"production": 0, "canary": 100}},
				{[]string{"swap", "pp"}, "84", "84", 2, 2, map[string]int64{"production": 0, "canary": 100}},
				{[]string{"final", "pp", "--drain-time", "0s"}, "84", "84", 2, 0, map[string]int64{"production": 100, "canary": 0}},
			}
			for _, s := range steps {
				out := h.mustRun(t, append([]string{"canary", "stage", "-n", ns}, s.args...)...)
				t.Logf("stage %s:\n%s", s.args[0], out)
				prod, canary := getDeployment(t, ns, "productpage"), getDeployment(t, ns, "productpage-canary")
				wantImages(t, "productpage at "+s.args[0], prod, productpageImage+":"+s.production)
				wantImages(t, "productpage-canary at "+s.args[0], canary, productpageImage+":"+s.canary)
				wantReplicas(t, "productpage at "+s.args[0], prod, s.prodReplicas)
				wantReplicas(t, "productpage-canary at "+s.args[0], canary, s.canaryRp)
				wantWeights(t, ns, "product-page-svc", s.weights)
			}
		})
	}
}
