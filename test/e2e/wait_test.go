package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWait: on a cluster whose controllers and simulated kubelets run pods,
// `stage --wait` returns once production and canary have rolled out (their pods
// really Ready), showing ready/total progress; a canary that never becomes ready
// fails fast, naming the Deployment and the pods and why they are not ready.
func TestWait(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		// progressDeadlineSeconds as a chart may set it, so a stuck rollout is
		// reported by the Deployment controller within seconds.
		chart := chartCopy(t, h.chartDir(), func(dir string) {
			editFile(t, filepath.Join(dir, "templates", "deployment.yaml"), "spec:\n", "spec:\n  progressDeadlineSeconds: 8\n")
		})
		h.stage(t, ns, "stable", "pp", chart, "--install", "--set", "image.tag=83", "--wait", "--timeout", "60s")
		wantRolledOut(t, ns, "productpage", 2)

		_, stderr, err := h.run(t, "canary", "stage", "-n", ns, "10", "pp", "--set", "image.tag=84", "--wait", "--timeout", "60s")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("stage 10 --wait stderr:\n%s", stderr)
		for _, want := range []string{"productpage 2/2", "productpage-canary 2/2"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stage 10 --wait does not show %q; stderr:\n%s", want, stderr)
			}
		}
		// --wait returned: both must be rolled out now, not a moment later.
		wantRolledOut(t, ns, "productpage", 2)
		wantRolledOut(t, ns, "productpage-canary", 2)
		wantTrackPods(t, ns, "app=productpage", map[string]int{"production": 2, "canary": 2})
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})

		// A canary image that never becomes ready: the progress deadline (8 s) ends
		// the wait long before --timeout (2 minutes).
		start := time.Now()
		_, errOut, err := h.run(t, "canary", "stage", "-n", ns, "10", "pp", "--set", "image.tag="+localcluster.NeverReadyTag, "--wait", "--timeout", "2m")
		took := time.Since(start)
		if err == nil {
			t.Fatalf("stage 10 --wait with a canary that never becomes ready succeeded")
		}
		t.Logf("stage 10 --wait with a never-ready canary failed after %s (wanted):\n%s", took.Round(time.Millisecond), errOut)
		for _, want := range []string{"productpage-canary", "progress deadline", "not ready", ":" + localcluster.NeverReadyTag, "helm canary rollback pp"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("the failure does not mention %q:\n%s", want, errOut)
			}
		}
		if took > 60*time.Second {
			t.Errorf("stage 10 --wait with a never-ready canary took %s to fail; the progress deadline is 8s", took)
		}
		// Production was never touched, and the old canary pods still serve.
		wantRolledOut(t, ns, "productpage", 2)
	})
}

// chartCopy copies a chart directory to a temporary one and lets edit change it.
func chartCopy(t *testing.T, src string, edit func(dir string)) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	edit(dst)
	return dst
}

// editFile replaces the first old in a file with new, failing when old is absent.
func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantRolledOut checks that Deployment name has rolled out its current spec to
// replicas pods, every one Ready.
func wantRolledOut(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	d, err := clients(t).kube.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := d.Status
	if s.ObservedGeneration < d.Generation || s.Replicas != replicas || s.UpdatedReplicas != replicas || s.ReadyReplicas != replicas {
		t.Errorf("Deployment %s: generation %d observed %d, replicas %d, updated %d, ready %d; want %d rolled out and ready",
			name, d.Generation, s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, replicas)
	}
}

// trackPods counts the live, Ready pods matching selector by their track label.
func trackPods(t *testing.T, ns, selector string) map[string]int {
	t.Helper()
	pods, err := clients(t).kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			counts[p.Labels["helm-canary.io/track"]]++
		}
	}
	return counts
}

// wantTrackPods checks the Ready pods per track label (tracks absent from want must
// have none).
func wantTrackPods(t *testing.T, ns, selector string, want map[string]int) {
	t.Helper()
	got := trackPods(t, ns, selector)
	for track, n := range want {
		if got[track] != n {
			t.Errorf("%s: %d Ready pods with track %q, want %d (all: %v)", selector, got[track], track, n, got)
		}
	}
	for track, n := range got {
		if _, ok := want[track]; !ok && n > 0 {
			t.Errorf("%s: %d Ready pods with track %q, want none", selector, n, track)
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
