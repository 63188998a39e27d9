package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// The tests in this file need what the local cluster runs beside the API server:
// the controller-manager, the scheduler and kwok's simulated kubelets, so that
// Deployments get ReplicaSets and pods that become Ready, EndpointSlices fill, Jobs
// complete and HPAs scale.

// TestWalkOnPods walks seed 001 with --wait and watches the cluster while it does:
//   - every ReplicaSet keeps the controller it was created with, and its pods carry
//     its Deployment's track: production's selector (app=productpage, immutable)
//     also matches canary pods, and neither Deployment may adopt or scale the
//     other's ReplicaSets;
//   - whenever the VirtualService changes, every subset it sends traffic to, and
//     every subset it just took traffic from, has Ready endpoints in the Service's
//     EndpointSlices (traffic never moves to pods that are not there yet, and at
//     final leaves the canary while its pods still serve);
//   - after each stage the Ready pods per track are what the stage promises:
//     canary pods from 10, none after final; production's pods run the new
//     version from swap on.
func TestWalkOnPods(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		obs := observe(t, ns, "product-page-svc")
		image := func(tag string) string { return productpageImage + ":" + tag }
		steps := []struct {
			args                    []string
			production, canary      string // image of the Ready pods per track; "" = none
			productionPods, canPods int
		}{
			{[]string{"stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83"}, "83", "", 2, 0},
			{[]string{"10", "pp", "--set", "image.tag=84"}, "83", "84", 2, 2},
			{[]string{"90", "pp"}, "83", "84", 2, 2},
			{[]string{"100", "pp"}, "83", "84", 2, 2},
			{[]string{"swap", "pp"}, "84", "84", 2, 2},
			{[]string{"final", "pp", "--drain-time", "2s"}, "84", "", 2, 0},
		}
		var stablePods []string
		for i, s := range steps {
			h.stage(t, ns, append(s.args, "--wait", "--timeout", "90s")...)
			want := map[string]int{"production": s.productionPods}
			if s.canPods > 0 {
				want["canary"] = s.canPods
			}
			wantTrackPods(t, ns, "app=productpage", want)
			wantTrackImages(t, ns, "production", image(s.production))
			if s.canary != "" {
				wantTrackImages(t, ns, "canary", image(s.canary))
			}
			switch {
			case i == 0:
				stablePods = readyPodNames(t, ns, "production")
			case s.production == "83":
				// The canary's pods carry a version of their own (the chart has no
				// version label: version=canary), and giving it to them never
				// restarted production's pods.
				wantTrackVersion(t, ns, "canary", "canary")
				wantTrackVersion(t, ns, "production", "")
				if got := readyPodNames(t, ns, "production"); strings.Join(got, ",") != strings.Join(stablePods, ",") {
					t.Errorf("stage %s: production's pods %v, want those of stable %v (not restarted)", s.args[0], got, stablePods)
				}
			}
		}
		// final scaled the canary to 0: its pods go.
		eventuallyNoPods(t, ns, "app=productpage,helm-canary.io/track=canary")
		obs.stop(t)
	})
}

// wantTrackImages checks that every live pod of a track runs image.
func wantTrackImages(t *testing.T, ns, track, image string) {
	t.Helper()
	pods, err := clients(t).kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "helm-canary.io/track=" + track})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) && p.Spec.Containers[0].Image != image {
			t.Errorf("Ready %s pod %s runs %s, want %s", track, p.Name, p.Spec.Containers[0].Image, image)
		}
	}
}

// readyPodNames lists the Ready pods of a track, sorted.
func readyPodNames(t *testing.T, ns, track string) []string {
	t.Helper()
	pods, err := clients(t).kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "helm-canary.io/track=" + track})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

// wantTrackVersion checks the version label (what Istio's telemetry and Kiali read)
// of every Ready pod of a track; "" wants none.
func wantTrackVersion(t *testing.T, ns, track, version string) {
	t.Helper()
	pods, err := clients(t).kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "helm-canary.io/track=" + track})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) && p.Labels["version"] != version {
			t.Errorf("Ready %s pod %s has version label %q, want %q", track, p.Name, p.Labels["version"], version)
		}
	}
}

func eventuallyNoPods(t *testing.T, ns, selector string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pods, err := clients(t).kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pods with %s still exist 30s later", len(pods.Items), selector)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// observer watches a namespace's ReplicaSets and one VirtualService while a test
// drives the release, recording what breaks the invariants TestWalkOnPods names.
type observer struct {
	ns, vs   string
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	problems []string
	vsEvents int
	owners   map[string]types.UID // ReplicaSet -> its controller when first seen
}

func observe(t *testing.T, ns, vs string) *observer {
	t.Helper()
	c := clients(t)
	ctx, cancel := context.WithCancel(context.Background())
	o := &observer{ns: ns, vs: vs, cancel: cancel, done: make(chan struct{}), owners: map[string]types.UID{}}
	rsWatch, err := c.kube.AppsV1().ReplicaSets(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vsWatch, err := c.dynamic.Resource(virtualServices).Namespace(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + vs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	go func() {
		defer close(o.done)
		defer rsWatch.Stop()
		defer vsWatch.Stop()
		var before map[string]int64 // subset -> weight at the previous change
		for {
			select {
			case ev, ok := <-rsWatch.ResultChan():
				if !ok {
					return
				}
				if rs, ok := ev.Object.(*appsv1.ReplicaSet); ok && ev.Type != watch.Deleted {
					o.checkReplicaSet(ctx, rs)
				}
			case ev, ok := <-vsWatch.ResultChan():
				if !ok {
					return
				}
				obj, ok := ev.Object.(*unstructured.Unstructured)
				if !ok || ev.Type == watch.Deleted {
					continue
				}
				now := routedSubsets(obj)
				if ev.Type == watch.Modified {
					// Not on creation: a VirtualService created with its release
					// (or already there when the watch starts) moves no traffic.
					o.checkEndpoints(ctx, now, before)
				}
				before = now
			case <-ctx.Done():
				return
			}
		}
	}()
	return o
}

func (o *observer) problem(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.problems = append(o.problems, fmt.Sprintf(format, args...))
}

// checkReplicaSet: a ReplicaSet keeps its first controller, and that controller is
// the Deployment of its pods' track (production's Deployment is named after the
// workload, the canary's has -canary appended).
func (o *observer) checkReplicaSet(ctx context.Context, rs *appsv1.ReplicaSet) {
	ref := metav1.GetControllerOf(rs)
	if ref == nil {
		return // between orphaning and adoption, or being deleted
	}
	o.mu.Lock()
	first, seen := o.owners[rs.Name]
	if !seen {
		o.owners[rs.Name] = ref.UID
	}
	o.mu.Unlock()
	if seen && first != ref.UID {
		o.problem("ReplicaSet %s changed controller: now %s %s", rs.Name, ref.Kind, ref.Name)
	}
	track := rs.Spec.Template.Labels["helm-canary.io/track"]
	if isCanary := strings.HasSuffix(ref.Name, "-canary"); isCanary != (track == "canary") {
		o.problem("ReplicaSet %s (pods of track %q, %d replicas) is controlled by Deployment %s", rs.Name, track, ptrOr(rs.Spec.Replicas, 1), ref.Name)
	}
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// routedSubsets maps each destination (host/subset) of a VirtualService's HTTP
// routes to its weight (100 for a lone destination without one).
func routedSubsets(vs *unstructured.Unstructured) map[string]int64 {
	out := map[string]int64{}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, r := range routes {
		entry, _ := r.(map[string]any)
		dests, _, _ := unstructured.NestedSlice(entry, "route")
		for _, d := range dests {
			dest, _ := d.(map[string]any)
			host, _, _ := unstructured.NestedString(dest, "destination", "host")
			subset, _, _ := unstructured.NestedString(dest, "destination", "subset")
			w, ok, _ := unstructured.NestedInt64(dest, "weight")
			if !ok && len(dests) == 1 {
				w = 100
			}
			key := host + "/" + subset
			out[key] = max(out[key], w)
		}
	}
	return out
}

// checkEndpoints runs when the VirtualService changed: every destination with
// weight now, or with weight before this change, must have a Ready endpoint of a
// pod its DestinationRule subset selects.
func (o *observer) checkEndpoints(ctx context.Context, now, before map[string]int64) {
	o.mu.Lock()
	o.vsEvents++
	o.mu.Unlock()
	c, _ := liveClients()
	for key := range mergedKeys(now, before) {
		if now[key] == 0 && before[key] == 0 {
			continue
		}
		host, subset, _ := strings.Cut(key, "/")
		service := strings.Split(host, ".")[0]
		selector := labels.Everything()
		if subset != "" {
			dr, err := c.dynamic.Resource(destinationRules).Namespace(o.ns).Get(ctx, service, metav1.GetOptions{})
			if err != nil {
				o.problem("traffic to %s (weight %d, before %d): DestinationRule %s: %v", key, now[key], before[key], service, err)
				continue
			}
			selector = labels.SelectorFromSet(subsetLabels(dr, subset))
		}
		ready, err := readyEndpoints(ctx, o.ns, service, selector)
		if err != nil {
			o.problem("traffic to %s: %v", key, err)
			continue
		}
		if ready == 0 {
			o.problem("the VirtualService routes %d%% to %s (before: %d%%), which has no Ready endpoint at that moment", now[key], key, before[key])
		}
	}
}

func mergedKeys(a, b map[string]int64) map[string]bool {
	keys := map[string]bool{}
	for k := range maps.Keys(a) {
		keys[k] = true
	}
	for k := range maps.Keys(b) {
		keys[k] = true
	}
	return keys
}

func subsetLabels(dr *unstructured.Unstructured, name string) map[string]string {
	subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	for _, s := range subsets {
		subset, _ := s.(map[string]any)
		if n, _, _ := unstructured.NestedString(subset, "name"); n == name {
			l, _, _ := unstructured.NestedStringMap(subset, "labels")
			return l
		}
	}
	return map[string]string{"helm-canary.io/no-such-subset": name}
}

// readyEndpoints counts the Ready endpoints of a Service whose pods match selector,
// from its EndpointSlices as the API server has them now.
func readyEndpoints(ctx context.Context, ns, service string, selector labels.Selector) (int, error) {
	c, _ := liveClients()
	endpointSlices, err := c.kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		return 0, err
	}
	pods, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return 0, err
	}
	selected := map[string]bool{}
	for _, p := range pods.Items {
		selected[p.Name] = true
	}
	ready := 0
	for _, s := range endpointSlices.Items {
		for _, e := range s.Endpoints {
			if e.TargetRef != nil && selected[e.TargetRef.Name] && e.Conditions.Ready != nil && *e.Conditions.Ready {
				ready++
			}
		}
	}
	return ready, nil
}

// stop ends the watches and reports what the observer saw.
func (o *observer) stop(t *testing.T) {
	t.Helper()
	o.cancel()
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.vsEvents == 0 {
		t.Errorf("the observer saw no change of VirtualService %s", o.vs)
	}
	if len(o.owners) == 0 {
		t.Errorf("the observer saw no ReplicaSet")
	}
	t.Logf("observer: %d VirtualService changes, %d ReplicaSets", o.vsEvents, len(o.owners))
	for _, p := range slices.Compact(o.problems) {
		t.Error(p)
	}
}

// TestHooksRun: a chart's pre-upgrade hook (a migration Job, as many charts ship)
// runs to completion on every stage that upgrades, so the stage finishes instead of
// waiting for a Job nobody runs.
func TestHooksRun(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := chartCopy(t, h.chartDir(), func(dir string) {
			err := os.WriteFile(filepath.Join(dir, "templates", "migrate-job.yaml"), []byte(`apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: 0
  template:
    metadata:
      labels:
        app: migrate
        sidecar.istio.io/inject: "false"
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: {{ .Values.image.repository }}:{{ .Values.image.tag }}
        args: [migrate]
`), 0o644)
			if err != nil {
				t.Fatal(err)
			}
		})
		for _, args := range [][]string{
			{"stable", "pp", chart, "--install", "--set", "image.tag=83"},
			{"10", "pp", "--set", "image.tag=84"},
		} {
			start := time.Now()
			h.stage(t, ns, append(args, "--timeout", "60s")...)
			job, err := clients(t).kube.BatchV1().Jobs(ns).Get(t.Context(), "pp-migrate", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("after stage %s: %v", args[0], err)
			}
			if job.Status.Succeeded != 1 {
				t.Errorf("after stage %s: Job pp-migrate succeeded %d, failed %d; want 1 success", args[0], job.Status.Succeeded, job.Status.Failed)
			}
			t.Logf("stage %s with a pre-upgrade hook Job: %s", args[0], time.Since(start).Round(time.Millisecond))
		}
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})
	})
}

// TestHPATwinScalesCanary: with autoscaling on, each Deployment has its own
// HorizontalPodAutoscaler and the HPA controller scales each within its own bounds:
// a canary pushed above its autoscaler's maximum comes back to it while production
// keeps its count, and the other way round.
func TestHPATwinScalesCanary(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		set := []string{"--set", "autoscaling.enabled=true,autoscaling.minReplicas=2,autoscaling.maxReplicas=3"}
		h.stage(t, ns, append([]string{"stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83"}, set...)...)
		h.stage(t, ns, "10", "pp", "--set", "image.tag=84")
		kube := clients(t).kube
		hpas, err := kube.AutoscalingV2().HorizontalPodAutoscalers(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		targets := map[string]string{}
		for _, hpa := range hpas.Items {
			targets[hpa.Name] = hpa.Spec.ScaleTargetRef.Name
		}
		t.Logf("HorizontalPodAutoscalers -> targets: %v", targets)
		if !slices.Contains(slices.Collect(maps.Values(targets)), "productpage-canary") || !slices.Contains(slices.Collect(maps.Values(targets)), "productpage") {
			t.Fatalf("want one HorizontalPodAutoscaler for productpage and one for productpage-canary, got %v", targets)
		}
		// Both start below their minimum (an HPA-managed Deployment carries no replica
		// count: 1); each autoscaler brings its own up to 2.
		waitReplicas(t, ns, map[string]int32{"productpage": 2, "productpage-canary": 2})

		scale := func(name string, n int32) {
			t.Helper()
			s, err := kube.AppsV1().Deployments(ns).GetScale(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s.Spec.Replicas = n
			if _, err := kube.AppsV1().Deployments(ns).UpdateScale(t.Context(), name, s, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		scale("productpage-canary", 6)
		waitReplicas(t, ns, map[string]int32{"productpage": 2, "productpage-canary": 3})
		scale("productpage", 6)
		waitReplicas(t, ns, map[string]int32{"productpage": 3, "productpage-canary": 3})
	})
}

// waitReplicas waits (up to a minute) until each Deployment's spec.replicas and
// Ready pods are as wanted, checking on the way that none goes where no autoscaler
// of its own would take it.
func waitReplicas(t *testing.T, ns string, want map[string]int32) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := map[string]string{}
		done := true
		for name, n := range want {
			d, err := clients(t).kube.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got[name] = fmt.Sprintf("%d replicas, %d ready", ptrOr(d.Spec.Replicas, 1), d.Status.ReadyReplicas)
			if ptrOr(d.Spec.Replicas, 1) != n || d.Status.ReadyReplicas != n {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %v, want %v", got, want)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestNeverReadyCanaryGetsNoTraffic: a canary whose pods never become Ready, started
// from stable without --wait, stops at its warm-up step: the command fails naming
// the pods, and the VirtualService never sent it any traffic.
func TestNeverReadyCanaryGetsNoTraffic(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := chartCopy(t, h.chartDir(), func(dir string) {
			editFile(t, filepath.Join(dir, "templates", "deployment.yaml"), "spec:\n", "spec:\n  progressDeadlineSeconds: 8\n")
		})
		h.stage(t, ns, "stable", "pp", chart, "--install", "--set", "image.tag=83")
		obs := observe(t, ns, "product-page-svc")
		start := time.Now()
		_, stderr, err := h.run(t, "canary", "stage", "-n", ns, "10", "pp", "--set", "image.tag="+localcluster.NeverReadyTag)
		if err == nil {
			t.Fatal("stage 10 with a canary that never becomes ready succeeded")
		}
		t.Logf("failed after %s (wanted):\n%s", time.Since(start).Round(time.Millisecond), stderr)
		for _, want := range []string{"no traffic moved", "productpage-canary", "not ready", ":" + localcluster.NeverReadyTag} {
			if !strings.Contains(stderr, want) {
				t.Errorf("the failure does not mention %q:\n%s", want, stderr)
			}
		}
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 100, "canary": 0})
		if st := valueAt(h.releaseValues(t, "pp", ns), "canary.stage"); st != "0" {
			t.Errorf("the release's stage is %q, want 0 (the warm-up, no traffic)", st)
		}
		obs.stop(t)
	})
}
