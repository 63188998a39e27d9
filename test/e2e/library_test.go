package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibraryModeWalk: `helm canary stage` drives a release whose chart renders the
// canary objects itself (canary-lib), through values, with the same commands and
// the same live objects as the post-renderer walk. Helm keeps no subcharts with a
// release: the plugin gives canary-lib back, so the last commands need no CHART.
func TestLibraryModeWalk(t *testing.T) {
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			h := newHelmEnv(t, major)
			ns := newNamespace(t)
			chart := filepath.Join(h.checkout, "examples", "productpage")
			steps := []struct {
				args               []string
				production, canary string
				prodRp, canaryRp   int32
				weights            map[string]int64
			}{
				{[]string{"stable", "pp", chart, "--install", "--set", "canaryLib.enabled=true", "--set", "image.tag=83"}, "83", "83", 2, 0, map[string]int64{"production": 100, "canary": 0}},
				{[]string{"10", "pp", chart, "--set", "image.tag=84"}, "83", "84", 2, 2, map[string]int64{"production": 90, "canary": 10}},
				{[]string{"90", "pp", chart}, "83", "84", 2, 2, map[string]int64{"production": 10, "canary": 90}},
				{[]string{"100", "pp", chart}, "83", "84", 2, 2, map[string]int64{"production": 0, "canary": 100}},
				{[]string{"swap", "pp", chart}, "84", "84", 2, 2, map[string]int64{"production": 0, "canary": 100}},
				{[]string{"final", "pp", chart, "--drain-time", "0s"}, "84", "84", 2, 0, map[string]int64{"production": 100, "canary": 0}},
				{[]string{"10", "pp", chart, "--set", "image.tag=85"}, "84", "85", 2, 2, map[string]int64{"production": 90, "canary": 10}},
			}
			for _, s := range steps {
				h.mustRun(t, append([]string{"canary", "stage", "-n", ns}, s.args...)...)
				at := " at " + s.args[0]
				prod, canary := getDeployment(t, ns, "productpage"), getDeployment(t, ns, "productpage-canary")
				wantImages(t, "productpage"+at, prod, productpageImage+":"+s.production)
				wantImages(t, "productpage-canary"+at, canary, productpageImage+":"+s.canary)
				wantReplicas(t, "productpage"+at, prod, s.prodRp)
				wantReplicas(t, "productpage-canary"+at, canary, s.canaryRp)
				wantWeights(t, ns, "product-page-svc", s.weights)
				wantLabels(t, "productpage selector"+at, prod.Selector, map[string]string{"app": "productpage"})
			}
			// Without the chart: Helm did not store canary-lib, the plugin ships the
			// same version, so traffic moves need no CHART.
			h.mustRun(t, "canary", "stage", "-n", ns, "90", "pp")
			wantImages(t, "productpage-canary at 90 without CHART", getDeployment(t, ns, "productpage-canary"), productpageImage+":85")
			wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 10, "canary": 90})
			// 85 misbehaves: rollback, without the chart, restores the last stable values (84).
			h.mustRun(t, "canary", "rollback", "-n", ns, "pp")
			wantImages(t, "productpage after rollback", getDeployment(t, ns, "productpage"), productpageImage+":84")
			wantReplicas(t, "productpage-canary after rollback", getDeployment(t, ns, "productpage-canary"), 0)
			wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 100, "canary": 0})

			var st struct {
				Workloads []struct {
					Name    string
					Stage   string
					Weights struct{ Production, Canary int }
				}
			}
			if err := json.Unmarshal([]byte(h.mustRun(t, "canary", "status", "pp", "-n", ns, "-o", "json")), &st); err != nil {
				t.Fatal(err)
			}
			if len(st.Workloads) != 1 || st.Workloads[0].Stage != "stable" || st.Workloads[0].Weights.Production != 100 {
				t.Errorf("status of the library-mode release: %+v", st)
			}
			// Production's image changes only at swap.
			if _, _, err := h.run(t, "canary", "stage", "-n", ns, "10", "pp", chart, "--set", "productionDeployment.image.tag=99"); err == nil {
				t.Error("changing production's image at stage 10 was not refused")
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
