package e2e

import (
	"context"
	"fmt"

	"encoding/json"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// statusTruth is what these tests read of `helm canary status -o json`.
type statusTruth struct {
	Revision  int    `json:"revision"`
	Status    string `json:"status"`
	Stage     string `json:"stage"`
	Workloads []struct {
		Name    string         `json:"name"`
		Stage   string         `json:"stage"`
		Weights map[string]int `json:"weights"`
		Drift   []string       `json:"drift"`
	} `json:"workloads"`
	Newer *struct {
		Revision    int    `json:"revision"`
		Status      string `json:"status"`
		Description string `json:"description"`
		Stage       string `json:"stage"`
	} `json:"newer"`
}

func (h *helmEnv) statusJSON(t *testing.T, ns, release string) statusTruth {
	t.Helper()
	out := h.mustRun(t, "canary", "status", release, "-n", ns, "-o", "json")
	var st statusTruth
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	return st
}

// wantDeployedAt10 checks that status reports the stage-10 revision at10 as what
// runs, and the revision after it as a newer one in Helm's status want.
func wantDeployedAt10(t *testing.T, what string, st statusTruth, at10 int, newerStatus string) {
	t.Helper()
	if st.Revision != at10 || st.Status != "deployed" || st.Stage != "10" {
		t.Errorf("%s: status reports revision %d (%s) at stage %s, want the deployed revision %d at stage 10", what, st.Revision, st.Status, st.Stage, at10)
	}
	if len(st.Workloads) != 1 || st.Workloads[0].Name != "productpage" || st.Workloads[0].Stage != "10" {
		t.Errorf("%s: workloads %+v, want productpage at 10", what, st.Workloads)
	}
	if st.Newer == nil {
		t.Fatalf("%s: status does not flag revision %d", what, at10+1)
	}
	if st.Newer.Revision != at10+1 || st.Newer.Status != newerStatus || st.Newer.Description == "" {
		t.Errorf("%s: newer revision %+v, want revision %d, %s, with Helm's description", what, *st.Newer, at10+1, newerStatus)
	}
}

// TestStatusAfterAFailedUpgrade: a plain `helm upgrade` of the canaried release
// fails (a ResourceQuota allows no Gateway, and the new values add one). Status must still report the
// deployed revision at stage 10 with its workload, and name the failed revision with
// Helm's description, not present the failed one as live ("No canaried workloads").
func TestStatusAfterAFailedUpgrade(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "10")
		at10 := h.lastRevision(t, "pp", ns).Revision
		noGateways(t, ns)
		if _, stderr, err := h.run(t, "upgrade", "pp", h.chartDir(), "-n", ns, "--reuse-values", "--set", "gateway.enabled=true"); err == nil {
			t.Fatal("helm upgrade adding a Gateway the quota forbids succeeded; the test needs a failed revision")
		} else {
			t.Logf("the failed upgrade: %s", stderr)
		}
		if last := h.lastRevision(t, "pp", ns); last.Revision != at10+1 || last.Status != "failed" {
			t.Fatalf("newest revision %+v, want %d failed", last, at10+1)
		}
		wantDeployedAt10(t, "after a failed plain upgrade", h.statusJSON(t, ns, "pp"), at10, "failed")
		table := h.mustRun(t, "canary", "status", "pp", "-n", ns)
		if strings.Contains(table, "No canaried workloads") || !strings.Contains(table, fmt.Sprintf("Revision %d is failed", at10+1)) {
			t.Errorf("status table after a failed upgrade:\n%s", table)
		}
		t.Logf("status after a failed upgrade:\n%s", table)

		// A failed helm canary stage: its stage (50) is not what runs either.
		if _, _, err := h.run(t, "canary", "stage", "-n", ns, "50", "pp", "--set", "gateway.enabled=true"); err == nil {
			t.Fatal("stage 50 adding a Gateway the quota forbids succeeded; the test needs a failed revision")
		}
		st := h.statusJSON(t, ns, "pp")
		if st.Revision != at10 || st.Stage != "10" || st.Newer == nil || st.Newer.Revision != at10+2 || st.Newer.Status != "failed" || st.Newer.Stage != "50" {
			t.Errorf("status after a failed stage 50: revision %d at %s, newer %+v; want revision %d at 10, newer revision %d failed at 50", st.Revision, st.Stage, st.Newer, at10, at10+2)
		}
	})
}

// TestStatusDuringAPendingUpgrade: while an upgrade is pending (here a plain `helm
// upgrade --wait` that waits for pods that never become ready; killed, it stays
// pending, as after an interrupted CI job), status reports the deployed revision and flags the pending
// one with Helm's status and description.
func TestStatusDuringAPendingUpgrade(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "10")
		at10 := h.lastRevision(t, "pp", ns).Revision
		pending := fmt.Sprint(at10 + 1)
		ctx, cancel := context.WithTimeout(t.Context(), helmTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, h.bin, "upgrade", "pp", h.chartDir(), "-n", ns, "--reuse-values", "--set", "image.tag="+localcluster.NeverReadyTag, "--wait", "--timeout", "10m")
		cmd.Env, cmd.Dir = h.env, h.home
		var stderr syncBuffer
		cmd.Stderr = &stderr
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}()
		deadline := time.Now().Add(time.Minute)
		for storedRevisions(t, "pp", ns)[pending] != "pending-upgrade" {
			if time.Now().After(deadline) {
				t.Fatalf("revision %s is not pending-upgrade after a minute: %v; helm stderr:\n%s", pending, storedRevisions(t, "pp", ns), stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		wantDeployedAt10(t, "during a pending upgrade", h.statusJSON(t, ns, "pp"), at10, "pending-upgrade")
		table := h.mustRun(t, "canary", "status", "pp", "-n", ns)
		if !strings.Contains(table, "Revision "+pending+" is pending-upgrade") {
			t.Errorf("status table during a pending upgrade:\n%s", table)
		}
		t.Logf("status during a pending upgrade:\n%s", table)

		// Killed, as a cancelled runner is: the revision stays pending, and status
		// says the same.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		wantDeployedAt10(t, "after the pending upgrade was killed", h.statusJSON(t, ns, "pp"), at10, "pending-upgrade")
	})
}

// noGateways puts a ResourceQuota in ns that allows no Istio Gateway, as a cluster
// admin may: an upgrade that adds one fails while Helm applies it.
func noGateways(t *testing.T, ns string) {
	t.Helper()
	hard := corev1.ResourceList{"count/gateways.networking.istio.io": resource.MustParse("0")}
	q, err := clients(t).kube.CoreV1().ResourceQuotas(ns).Create(t.Context(), &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-gateways"}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The quota controller fills in the usage; where none runs, set what it would.
	deadline := time.Now().Add(10 * time.Second)
	for len(q.Status.Hard) == 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if q, err = clients(t).kube.CoreV1().ResourceQuotas(ns).Get(t.Context(), "no-gateways", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(q.Status.Hard) == 0 {
		q.Status = corev1.ResourceQuotaStatus{Hard: hard, Used: corev1.ResourceList{"count/gateways.networking.istio.io": resource.MustParse("0")}}
		if _, err := clients(t).kube.CoreV1().ResourceQuotas(ns).UpdateStatus(t.Context(), q, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatusReportsDestinationRuleDrift: the DestinationRule's subsets decide which
// pods are production and which canary; a hand edit of them is drift as much as
// edited weights are.
func TestStatusReportsDestinationRuleDrift(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "10")
		// The canary subset now selects production's pods: 10% "canary" traffic
		// reaches the old version.
		patch := `[{"op":"test","path":"/spec/subsets/1/name","value":"canary"},` +
			`{"op":"replace","path":"/spec/subsets/1/labels/helm-canary.io~1track","value":"production"}]`
		if _, err := clients(t).dynamic.Resource(destinationRules).Namespace(ns).Patch(t.Context(), "product-page-svc", types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("editing the DestinationRule by hand: %v", err)
		}
		st := h.statusJSON(t, ns, "pp")
		drift := ""
		if len(st.Workloads) == 1 {
			drift = strings.Join(st.Workloads[0].Drift, "\n")
		}
		if !strings.Contains(drift, "DestinationRule product-page-svc has subsets") || !strings.Contains(drift, "helm-canary.io/track=production}, the release says") {
			t.Errorf("status after editing the DestinationRule's canary subset: drift %q, want the DestinationRule's subsets", drift)
		}
		table := h.mustRun(t, "canary", "status", "pp", "-n", ns)
		if !strings.Contains(table, "DRIFT productpage: DestinationRule") {
			t.Errorf("status table has no DRIFT line for the DestinationRule:\n%s", table)
		}
		t.Logf("status:\n%s", table)

		// A field added by hand (a traffic policy) is drift too.
		add := `{"spec":{"trafficPolicy":{"connectionPool":{"tcp":{"maxConnections":1}}}}}`
		if _, err := clients(t).dynamic.Resource(destinationRules).Namespace(ns).Patch(t.Context(), "product-page-svc", types.MergePatchType, []byte(add), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		h.stage(t, ns, "10", "pp")
		st = h.statusJSON(t, ns, "pp")
		if len(st.Workloads) != 1 || len(st.Workloads[0].Drift) > 0 {
			t.Errorf("stage 10 again did not repair the DestinationRule: %+v", st.Workloads)
		}
		if _, err := clients(t).dynamic.Resource(destinationRules).Namespace(ns).Patch(t.Context(), "product-page-svc", types.MergePatchType, []byte(add), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		st = h.statusJSON(t, ns, "pp")
		if len(st.Workloads) != 1 || !strings.Contains(strings.Join(st.Workloads[0].Drift, "\n"), "DestinationRule product-page-svc differs from the release in spec.trafficPolicy") {
			t.Errorf("status after adding a traffic policy by hand: %+v", st.Workloads)
		}
	})
}
