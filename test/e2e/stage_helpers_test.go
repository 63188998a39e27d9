package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Helpers shared by the `helm canary stage` tests: seed 001's walk of
// examples/productpage, the release's stored values, and snapshots of the live
// objects to compare before/after a command or across namespaces.

// bothHelms runs f as a parallel subtest for Helm 3 and for Helm 4, each with the
// plugin installed in a Helm home of its own and a namespace of its own.
func bothHelms(t *testing.T, f func(t *testing.T, h *helmEnv, ns string)) {
	t.Helper()
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			f(t, newHelmEnv(t, major), newNamespace(t))
		})
	}
}

// chartDir is examples/productpage in the plugin checkout.
func (h *helmEnv) chartDir() string { return filepath.Join(h.checkout, "examples", "productpage") }

// stage runs `helm canary stage -n ns args...` and returns stdout; it fails the test
// on error.
func (h *helmEnv) stage(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return h.mustRun(t, append([]string{"canary", "stage", "-n", ns}, args...)...)
}

// seedSteps are seed 001's steps as `helm canary stage` arguments (release pp).
type seedStep struct {
	stage string
	args  []string
}

func seedSteps(h *helmEnv) []seedStep {
	return []seedStep{
		{"stable", []string{"stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83"}},
		{"10", []string{"10", "pp", "--set", "image.tag=84"}},
		{"90", []string{"90", "pp"}},
		{"100", []string{"100", "pp"}},
		{"swap", []string{"swap", "pp"}},
		{"final", []string{"final", "pp", "--drain-time", "0s"}},
	}
}

// walkTo installs pp at stable with tag 83 and walks seed 001 up to and including
// stage last.
func walkTo(t *testing.T, h *helmEnv, ns, last string) {
	t.Helper()
	for _, s := range seedSteps(h) {
		h.stage(t, ns, s.args...)
		if s.stage == last {
			return
		}
	}
	t.Fatalf("walkTo: %q is not a step of seed 001", last)
}

// releaseValues is `helm get values RELEASE -n NS -o json`: the user values.
func (h *helmEnv) releaseValues(t *testing.T, release, ns string) map[string]any {
	t.Helper()
	out := h.mustRun(t, "get", "values", release, "-n", ns, "-o", "json")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("helm%d get values %s: %v\n%s", h.major, release, err, out)
	}
	return v
}

// valueAt is the value at a dotted path of values as a string ("" when absent).
func valueAt(values map[string]any, path string) string {
	var v any = values
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// history is `helm history RELEASE -o json`.
func (h *helmEnv) history(t *testing.T, release, ns string) []historyEntry {
	t.Helper()
	out := h.mustRun(t, "history", release, "-n", ns, "-o", "json")
	var history []historyEntry
	if err := json.Unmarshal([]byte(out), &history); err != nil {
		t.Fatalf("helm%d history %s: %v\n%s", h.major, release, err, out)
	}
	return history
}

// storedRevisions reads a release's revisions straight from Helm's storage (the
// sh.helm.release.v1 Secrets, which Helm 3 and Helm 4 share): revision -> status.
// Cheaper than `helm history`, for before/after checks.
func storedRevisions(t *testing.T, release, ns string) map[string]string {
	t.Helper()
	secrets, err := clients(t).kube.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "owner=helm,name=" + release})
	if err != nil {
		t.Fatalf("listing release %s's Secrets: %v", release, err)
	}
	revisions := map[string]string{}
	for _, s := range secrets.Items {
		revisions[s.Labels["version"]] = s.Labels["status"]
	}
	return revisions
}

// weightsOf is the default route a stage stands for: stable and final all to
// production, swap all to the canary, a number w: 100-w / w.
func weightsOf(t *testing.T, stage string) map[string]int64 {
	t.Helper()
	switch stage {
	case "stable", "final":
		return map[string]int64{"production": 100, "canary": 0}
	case "swap":
		return map[string]int64{"production": 0, "canary": 100}
	}
	w, err := strconv.Atoi(stage)
	if err != nil {
		t.Fatalf("stage %q: not a stage of seed 001", stage)
	}
	return map[string]int64{"production": int64(100 - w), "canary": int64(w)}
}

// liveSnapshot is what helm-canary manages of productpage in a namespace, as live.
type liveSnapshot struct {
	Deployments map[string]liveDeployment
	// DestinationRule and VirtualService specs.
	DestinationRule, VirtualService map[string]any
	// Versions of all four objects: unchanged objects keep theirs. For the Istio
	// objects the resourceVersion; for Deployments, whose status the controllers
	// keep writing, the generation (spec writes) and the labels and annotations.
	ResourceVersions map[string]string
}

func snapshot(t *testing.T, ns string) liveSnapshot {
	t.Helper()
	s := liveSnapshot{Deployments: map[string]liveDeployment{}, ResourceVersions: map[string]string{}}
	for _, name := range []string{"productpage", "productpage-canary"} {
		s.Deployments[name], s.ResourceVersions["Deployment/"+name] = getDeploymentVersion(t, ns, name)
	}
	dr := getIstio(t, destinationRules, ns, "product-page-svc")
	vs := getIstio(t, virtualServices, ns, "product-page-svc")
	s.DestinationRule, _, _ = unstructured.NestedMap(dr.Object, "spec")
	s.VirtualService, _, _ = unstructured.NestedMap(vs.Object, "spec")
	s.ResourceVersions["DestinationRule/product-page-svc"] = dr.GetResourceVersion()
	s.ResourceVersions["VirtualService/product-page-svc"] = vs.GetResourceVersion()
	return s
}

// sameObjects compares two snapshots' objects (not their resource versions).
func sameObjects(t *testing.T, what string, a, b liveSnapshot) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(a.Deployments)) {
		if !reflect.DeepEqual(a.Deployments[name], b.Deployments[name]) {
			t.Errorf("%s: Deployment %s differs:\n  %+v\n  %+v", what, name, a.Deployments[name], b.Deployments[name])
		}
	}
	if !reflect.DeepEqual(a.DestinationRule, b.DestinationRule) {
		t.Errorf("%s: DestinationRule product-page-svc spec differs:\n  %v\n  %v", what, a.DestinationRule, b.DestinationRule)
	}
	if !reflect.DeepEqual(a.VirtualService, b.VirtualService) {
		t.Errorf("%s: VirtualService product-page-svc spec differs:\n  %v\n  %v", what, a.VirtualService, b.VirtualService)
	}
}

// unchanged checks that nothing was written to the objects of a snapshot.
func unchanged(t *testing.T, what string, before, after liveSnapshot) {
	t.Helper()
	sameObjects(t, what, before, after)
	if !maps.Equal(before.ResourceVersions, after.ResourceVersions) {
		t.Errorf("%s: objects were written: resource versions %v, before %v", what, after.ResourceVersions, before.ResourceVersions)
	}
}

// syncBuffer is a bytes.Buffer for a process's output read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
