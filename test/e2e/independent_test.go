package e2e

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// TestIndependentStages: workloads of one release move through stages alone
// (`--workload`), and `status` shows each; a single workload's rollback pins only
// its own production back.
func TestIndependentStages(t *testing.T) {
	h := newHelmEnv(t, 3)
	ns := newNamespace(t)
	chart := filepath.Join(h.checkout, "test", "charts", "bookinfo")
	// The chart's post-upgrade smoke-test Job runs (and completes) at every stage.
	stage := func(args ...string) {
		h.mustRun(t, append([]string{"canary", "stage", "-n", ns}, args...)...)
	}
	image := func(name, tag string) string { return "docker.io/istio/examples-bookinfo-" + name + ":" + tag }

	stage("stable", "bi", chart, "--install", "--set", "tag=1.20.2")
	stage("10", "bi", "--workload", "ratings-v1", "--set", "tag=1.20.3")
	stage("50", "bi", "--workload", "productpage-v1")

	wantWeights(t, ns, "ratings", map[string]int64{"production": 90, "canary": 10})
	wantWeights(t, ns, "productpage", map[string]int64{"production": 50, "canary": 50})
	wantWeights(t, ns, "details", map[string]int64{"production": 100, "canary": 0})
	wantImages(t, "ratings-v1-canary", getDeployment(t, ns, "ratings-v1-canary"), image("ratings-v1", "1.20.3"))
	wantImages(t, "ratings-v1", getDeployment(t, ns, "ratings-v1"), image("ratings-v1", "1.20.2"))
	wantReplicas(t, "details-v1-canary", getDeployment(t, ns, "details-v1-canary"), 0)

	var st struct {
		Workloads []struct{ Name, Stage string } `json:"workloads"`
	}
	if err := json.Unmarshal([]byte(h.mustRun(t, "canary", "status", "bi", "-n", ns, "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, w := range st.Workloads {
		got[w.Name] = w.Stage
	}
	if got["ratings-v1"] != "10" || got["productpage-v1"] != "50" || got["details-v1"] != "stable" {
		t.Errorf("status stages = %v", got)
	}

	// ratings finishes its canary: swap, final; productpage is untouched.
	stage("100", "bi", "--workload", "ratings-v1")
	stage("swap", "bi", "--workload", "ratings-v1")
	stage("final", "bi", "--workload", "ratings-v1", "--drain-time", "0s")
	wantImages(t, "ratings-v1 after final", getDeployment(t, ns, "ratings-v1"), image("ratings-v1", "1.20.3"))
	wantReplicas(t, "ratings-v1-canary after final", getDeployment(t, ns, "ratings-v1-canary"), 0)
	wantWeights(t, ns, "productpage", map[string]int64{"production": 50, "canary": 50})

	// productpage alone rolls back: its production stays 1.20.2, its canary goes.
	stage("stable", "bi", "--workload", "productpage-v1")
	wantWeights(t, ns, "productpage", map[string]int64{"production": 100, "canary": 0})
	wantImages(t, "productpage-v1", getDeployment(t, ns, "productpage-v1"), image("productpage-v1", "1.20.2"))
	wantReplicas(t, "productpage-v1-canary", getDeployment(t, ns, "productpage-v1-canary"), 0)
	wantImages(t, "ratings-v1 stays promoted", getDeployment(t, ns, "ratings-v1"), image("ratings-v1", "1.20.3"))

	// Refusals are per workload too.
	if _, _, err := h.run(t, "canary", "stage", "-n", ns, "swap", "bi", "--workload", "details-v1"); err == nil {
		t.Error("swap of details-v1 (at stable) was not refused")
	}
}
