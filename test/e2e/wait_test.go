package e2e

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWait: without a controller-manager no Deployment ever becomes ready by
// itself, so the test plays the controller: it marks productpage and
// productpage-canary rolled out while `stage --wait` runs, and the command must
// then finish, having shown ready/total progress. A short --timeout fails clearly.
func TestWait(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "stable")

		ctx, cancel := context.WithTimeout(t.Context(), helmTimeout)
		defer cancel()
		args := []string{"canary", "stage", "-n", ns, "10", "pp", "--set", "image.tag=84", "--wait", "--timeout", "60s"}
		cmd := exec.CommandContext(ctx, h.bin, args...)
		cmd.Env, cmd.Dir = h.env, h.home
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()

		// The upgrade is done once the command reports progress; until the Deployments
		// are marked ready, it keeps waiting.
		deadline := time.After(30 * time.Second)
	waiting:
		for !strings.Contains(stderr.String(), "productpage-canary 0/2") {
			select {
			case err := <-done:
				t.Fatalf("stage 10 --wait ended (%v) before the Deployments were ready; stderr:\n%s", err, stderr.String())
			case <-deadline:
				break waiting
			case <-time.After(100 * time.Millisecond):
			}
		}
		if !strings.Contains(stderr.String(), "productpage-canary 0/2") {
			t.Errorf("stage 10 --wait shows no progress line with productpage-canary 0/2 after 30s; stderr:\n%s", stderr.String())
		}
		select {
		case err := <-done:
			t.Fatalf("stage 10 --wait ended (%v) before the Deployments were ready; stderr:\n%s", err, stderr.String())
		case <-time.After(1500 * time.Millisecond):
		}
		markRolledOut(t, ns, "productpage", "productpage-canary")

		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("stage 10 --wait: %v; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("stage 10 --wait still waits 30s after the Deployments were marked ready; stderr:\n%s", stderr.String())
		}
		t.Logf("stage 10 --wait stderr:\n%s", stderr.String())
		for _, want := range []string{"productpage 2/2", "productpage-canary 2/2"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stage 10 --wait does not show %q; stderr:\n%s", want, stderr.String())
			}
		}
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})

		// A new canary version nobody rolls out: --timeout 3s fails, saying so.
		start := time.Now()
		_, errOut, err := h.run(t, "canary", "stage", "-n", ns, "10", "pp", "--set", "image.tag=85", "--wait", "--timeout", "3s")
		took := time.Since(start)
		if err == nil {
			t.Fatalf("stage 10 --wait --timeout 3s with a canary nobody rolls out succeeded")
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("stage 10 --wait --timeout 3s: %v", err)
		}
		if !strings.Contains(errOut, "timed out") || !strings.Contains(errOut, "productpage-canary") {
			t.Errorf("stage 10 --wait --timeout 3s: stderr does not say it timed out waiting for productpage-canary:\n%s", errOut)
		}
		if took > 20*time.Second {
			t.Errorf("stage 10 --wait --timeout 3s took %s", took)
		}
	})
}

// markRolledOut plays the Deployment controller: status says every replica of the
// current generation is updated, ready and available.
func markRolledOut(t *testing.T, ns string, names ...string) {
	t.Helper()
	deployments := clients(t).kube.AppsV1().Deployments(ns)
	for _, name := range names {
		d, err := deployments.Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := int32(1)
		if d.Spec.Replicas != nil {
			n = *d.Spec.Replicas
		}
		d.Status.ObservedGeneration = d.Generation
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = n, n, n, n
		if _, err := deployments.UpdateStatus(t.Context(), d, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("Deployment %s/%s status: %v", ns, name, err)
		}
	}
}
