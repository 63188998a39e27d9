package e2e

import (
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// wantRolledBack checks a release that was rolled back to seed 001's stable
// revision: production runs tag 83 again, the canary has no pods, all traffic is on
// production, and the release's values are the stable revision's (tag 83) at stage
// stable.
func wantRolledBack(t *testing.T, h *helmEnv, ns, how string) {
	t.Helper()
	prod, canary := getDeployment(t, ns, "productpage"), getDeployment(t, ns, "productpage-canary")
	wantImages(t, "productpage after "+how, prod, productpageImage+":83")
	wantReplicas(t, "productpage after "+how, prod, 2)
	wantLabel(t, "productpage pod template after "+how, prod.PodLabels, trackLabel, "production")
	wantLabels(t, "productpage selector after "+how, prod.Selector, map[string]string{"app": "productpage"})
	wantReplicas(t, "productpage-canary after "+how, canary, 0)
	wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 100, "canary": 0})

	values := h.releaseValues(t, "pp", ns)
	if got := valueAt(values, "image.tag"); got != "83" {
		t.Errorf("after %s: helm get values: image.tag %q, want 83 (the stable revision's values restored); values %v", how, got, values)
	}
	if got := valueAt(values, "canary.stage"); got != "stable" {
		t.Errorf("after %s: helm get values: canary.stage %q, want stable; values %v", how, got, values)
	}
	if last := h.lastRevision(t, "pp", ns); last.Status != "deployed" {
		t.Errorf("after %s: last revision %+v, want deployed", how, last)
	}
}

// TestRollbackFrom90: stable(83) → 10(84) → 90, then back to stable, with `stage
// stable` and with `rollback`.
func TestRollbackFrom90(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "90")
		before := h.lastRevision(t, "pp", ns)
		h.stage(t, ns, "stable", "pp")
		if after := h.lastRevision(t, "pp", ns); after.Revision != before.Revision+1 {
			t.Errorf("stage stable from 90: last revision %d, want %d (one upgrade)", after.Revision, before.Revision+1)
		}
		wantRolledBack(t, h, ns, "stage stable from 90")

		// Again to 90 with the new version, then `rollback`.
		h.stage(t, ns, "10", "pp", "--set", "image.tag=84")
		h.stage(t, ns, "90", "pp")
		canary := getDeployment(t, ns, "productpage-canary")
		wantImages(t, "productpage-canary at 90 again", canary, productpageImage+":84")
		wantReplicas(t, "productpage-canary at 90 again", canary, 2)
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 10, "canary": 90})
		out := h.mustRun(t, "canary", "rollback", "pp", "-n", ns)
		t.Logf("rollback:\n%s", out)
		wantRolledBack(t, h, ns, "rollback from 90")
	})
}

// TestRollbackFromSwap: after swap production already runs 84; stable rolls
// production back to 83.
func TestRollbackFromSwap(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "swap")
		wantImages(t, "productpage at swap", getDeployment(t, ns, "productpage"), productpageImage+":84")
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 0, "canary": 100})
		h.stage(t, ns, "stable", "pp")
		wantRolledBack(t, h, ns, "stage stable from swap")
	})
}

// TestRollbackAfterFinal: once final made 84 the stable version, the next canary's
// rollback returns to 84 (the newest stable/final revision), not to 83.
func TestRollbackAfterFinal(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "final")
		h.stage(t, ns, "10", "pp", "--set", "image.tag=85")
		wantImages(t, "productpage-canary at 10 with 85", getDeployment(t, ns, "productpage-canary"), productpageImage+":85")
		h.stage(t, ns, "90", "pp")
		h.mustRun(t, "canary", "rollback", "pp", "-n", ns)
		prod, canary := getDeployment(t, ns, "productpage"), getDeployment(t, ns, "productpage-canary")
		wantImages(t, "productpage after rollback", prod, productpageImage+":84")
		wantReplicas(t, "productpage after rollback", prod, 2)
		wantReplicas(t, "productpage-canary after rollback", canary, 0)
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 100, "canary": 0})
		values := h.releaseValues(t, "pp", ns)
		if valueAt(values, "image.tag") != "84" || valueAt(values, "canary.stage") != "stable" {
			t.Errorf("after rollback: values %v, want image.tag 84 (final's) and canary.stage stable", values)
		}
	})
}

// TestRollbackFlags: rollback takes stage's flags, and they do what they say. On
// withcommon with its pre-upgrade hook that never completes (slowHook): with hooks
// the rollback runs it and fails at --timeout; --no-hooks runs none; --wait returns
// with production's pods ready and the canary's gone; a CHART renders the last
// stable values with that chart.
func TestRollbackFlags(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := h.commonChart()
		hook := commonName + "-migrate"
		pods := clients(t).kube.CoreV1().Pods(ns)
		h.stage(t, ns, "stable", commonRelease, chart, "--install", "--set", "image.tag=83", "--set", "slowHook.enabled=true")
		h.stage(t, ns, "10", commonRelease, chart, "--set", "image.tag=84", "--no-hooks")
		if _, err := pods.Get(t.Context(), hook, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("stage 10 --no-hooks: hook Pod %s: %v, want none", hook, err)
		}

		before := h.lastRevision(t, commonRelease, ns)
		start := time.Now()
		_, stderr, err := h.run(t, "canary", "rollback", commonRelease, "-n", ns, "--timeout", "5s")
		took := time.Since(start)
		if err == nil {
			t.Fatalf("rollback with a hook that never completes and --timeout 5s succeeded")
		}
		t.Logf("rollback with hooks, --timeout 5s: %s after %s", strings.TrimSpace(stderr), took.Round(time.Millisecond))
		if took > 45*time.Second {
			t.Errorf("rollback --timeout 5s returned after %s", took.Round(time.Second))
		}
		if _, err := pods.Get(t.Context(), hook, metav1.GetOptions{}); err != nil {
			t.Errorf("rollback with hooks: hook Pod %s: %v, want it created", hook, err)
		}
		if after := h.lastRevision(t, commonRelease, ns); after.Revision != before.Revision+1 || after.Status != "failed" {
			t.Errorf("rollback with hooks: last revision %+v, want %d failed", after, before.Revision+1)
		}

		if err := pods.Delete(t.Context(), hook, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "hook Pod "+hook+" not deleted", func() bool {
			_, err := pods.Get(t.Context(), hook, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
		rollbackWithoutChart(t, h, ns, "canary", "rollback", "--no-hooks", "--wait", "--timeout", "2m")
		if _, err := pods.Get(t.Context(), hook, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("rollback --no-hooks: hook Pod %s: %v, want none", hook, err)
		}
		wantCommonStable(t, h, ns, "83", "rollback --no-hooks --wait")
		// --wait returned once the rollout was done: no polling here.
		for name, want := range map[string]int32{commonName: 2, commonName + "-canary": 0} {
			d, err := clients(t).kube.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if s := d.Status; s.ObservedGeneration < d.Generation || s.Replicas != want || s.ReadyReplicas != want || s.UpdatedReplicas != want {
				t.Errorf("right after rollback --wait: Deployment %s status %+v, want %d replicas all updated and ready", name, s, want)
			}
		}

		h.stage(t, ns, "10", commonRelease, chart, "--set", "image.tag=84", "--no-hooks")
		out := h.mustRun(t, "canary", "rollback", commonRelease, chart, "-n", ns, "--no-hooks", "--timeout", "1m")
		t.Logf("rollback CHART:\n%s", out)
		wantCommonStable(t, h, ns, "83", "rollback with CHART")
	})
}
