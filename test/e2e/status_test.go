package e2e

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestStatus checks `helm canary status -o json` against the shape at stage
// 10, then edits the live VirtualService behind Helm's back and checks that status
// shows the live weights and reports the drift, in JSON and in the table.
func TestStatus(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "10")
		revision := h.lastRevision(t, "pp", ns).Revision

		out := h.mustRun(t, "canary", "status", "pp", "-n", ns, "-o", "json")
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("status -o json is not JSON: %v\n%s", err, out)
		}
		// The shape: these keys with these values (more keys are allowed).
		want := map[string]any{
			"release":   "pp",
			"namespace": ns,
			"revision":  float64(revision),
		}
		for k, v := range want {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("status -o json: %q is %#v, want %#v\n%s", k, got[k], v, out)
			}
		}
		workloads, _ := got["workloads"].([]any)
		if len(workloads) != 1 {
			t.Fatalf("status -o json: workloads %#v, want one (productpage)\n%s", got["workloads"], out)
		}
		w, _ := workloads[0].(map[string]any)
		wantWorkload := map[string]any{
			"name":     "productpage",
			"service":  "product-page-svc",
			"stage":    "10",
			"weights":  map[string]any{"production": float64(90), "canary": float64(10)},
			"replicas": map[string]any{"production": float64(2), "canary": float64(2)},
			"images": map[string]any{
				"production": []any{productpageImage + ":83"},
				"canary":     []any{productpageImage + ":84"},
			},
			// What Istio and Kiali report: the chart has no version label.
			"versions": map[string]any{"production": "latest", "canary": "canary"},
		}
		for k, v := range wantWorkload {
			if !reflect.DeepEqual(w[k], v) {
				t.Errorf("status -o json: workloads[0].%s is %#v, want %#v", k, w[k], v)
			}
		}
		if d, ok := w["drift"]; ok && d != nil && len(d.([]any)) > 0 {
			t.Errorf("status -o json: drift %v right after stage 10, want none", d)
		}
		if table := h.mustRun(t, "canary", "status", "pp", "-n", ns); strings.Contains(table, "DRIFT") {
			t.Errorf("status right after stage 10 reports drift:\n%s", table)
		}
		// yaml is the third format.
		if y := h.mustRun(t, "canary", "status", "pp", "-n", ns, "-o", "yaml"); !strings.Contains(y, "release: pp") {
			t.Errorf("status -o yaml lacks release: pp:\n%s", y)
		}

		// Someone edits the weights by hand: 50/50.
		editWeights(t, ns, 50, 50)

		out = h.mustRun(t, "canary", "status", "pp", "-n", ns, "-o", "json")
		var drifted struct {
			Drift     []string `json:"drift"`
			Workloads []struct {
				Weights map[string]int `json:"weights"`
				Drift   []string       `json:"drift"`
			} `json:"workloads"`
		}
		if err := json.Unmarshal([]byte(out), &drifted); err != nil || len(drifted.Workloads) != 1 {
			t.Fatalf("status -o json after the edit: %v\n%s", err, out)
		}
		// status reads the live objects, not only the stored values.
		if w := drifted.Workloads[0].Weights; w["production"] != 50 || w["canary"] != 50 {
			t.Errorf("status -o json after the edit: weights %v, want the live 50/50", w)
		}
		drift := append(drifted.Drift, drifted.Workloads[0].Drift...)
		if len(drift) == 0 || !strings.Contains(strings.Join(drift, "\n"), "VirtualService") {
			t.Errorf("status -o json after editing the VirtualService: drift %q, want an entry naming the VirtualService\n%s", drift, out)
		}
		table := h.mustRun(t, "canary", "status", "pp", "-n", ns)
		if !strings.Contains(table, "DRIFT") || !strings.Contains(table, "VirtualService") {
			t.Errorf("status table after editing the VirtualService has no DRIFT line naming it:\n%s", table)
		}
		t.Logf("status with drift:\n%s", table)

	})
}

// editWeights edits the live VirtualService product-page-svc behind Helm's back:
// its default route's production and canary weights.
func editWeights(t *testing.T, ns string, production, canary int) {
	t.Helper()
	patch := fmt.Sprintf(`[{"op":"test","path":"/spec/http/0/route/0/destination/subset","value":"production"},`+
		`{"op":"replace","path":"/spec/http/0/route/0/weight","value":%d},`+
		`{"op":"test","path":"/spec/http/0/route/1/destination/subset","value":"canary"},`+
		`{"op":"replace","path":"/spec/http/0/route/1/weight","value":%d}]`, production, canary)
	if _, err := clients(t).dynamic.Resource(virtualServices).Namespace(ns).Patch(t.Context(), "product-page-svc", types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("editing the VirtualService's weights by hand: %v", err)
	}
	wantWeights(t, ns, "product-page-svc", map[string]int64{"production": int64(production), "canary": int64(canary)})
}

// statusOf is `helm canary status -o json`, or the status a stage command prints
// with -o json.
type statusOf struct {
	Revision  int `json:"revision"`
	Workloads []struct {
		Weights  map[string]int `json:"weights"`
		Replicas map[string]int `json:"replicas"`
		Drift    []string       `json:"drift"`
	} `json:"workloads"`
}

func parseStatus(t *testing.T, what, out string) statusOf {
	t.Helper()
	var st statusOf
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Workloads) != 1 {
		t.Fatalf("%s: not the status of one workload (%v):\n%s", what, err, out)
	}
	return st
}

// TestStageRepairsDrift: status reports a hand edit as drift; staging the release
// (again) must make the live objects what the release says, the fix a user reaches
// for. A rollback in particular must put all traffic on production whatever was
// edited by hand.
func TestStageRepairsDrift(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "10")

		// The rollback, after a hand edit.
		editWeights(t, ns, 50, 50)
		h.stage(t, ns, "stable", "pp")
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 100, "canary": 0})
		h.stage(t, ns, "10", "pp", "--set", "image.tag=84")

		// A hand-scaled canary Deployment: staging 10 again scales it back.
		scale := `{"spec":{"replicas":5}}`
		if _, err := clients(t).kube.AppsV1().Deployments(ns).Patch(t.Context(), "productpage-canary", types.MergePatchType, []byte(scale), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		st := parseStatus(t, "stage 10 after scaling the canary by hand", h.stage(t, ns, "10", "pp", "-o", "json"))
		wantReplicas(t, "productpage-canary after staging 10 again", getDeployment(t, ns, "productpage-canary"), 2)
		if len(st.Workloads[0].Drift) > 0 {
			t.Errorf("stage 10 again after scaling the canary by hand: drift %q remains", st.Workloads[0].Drift)
		}

		// Hand-edited weights: staging 10 again puts 90/10 back.
		editWeights(t, ns, 50, 50)
		st = parseStatus(t, "stage 10 after editing the weights by hand", h.stage(t, ns, "10", "pp", "-o", "json"))
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})
		if len(st.Workloads[0].Drift) > 0 {
			t.Errorf("stage 10 again after editing the weights by hand reports success, but its own status still shows drift %q", st.Workloads[0].Drift)
		}
	})
}
