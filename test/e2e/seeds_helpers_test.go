package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	sigsyaml "sigs.k8s.io/yaml"
)

// Helpers of the seed scenarios (seeds_test.go): routing beyond weights, checked on
// the live objects and with the route simulator.

var (
	gateways     = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}
	envoyFilters = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1alpha3", Resource: "envoyfilters"}
	wasmPlugins  = schema.GroupVersionResource{Group: "extensions.istio.io", Version: "v1alpha1", Resource: "wasmplugins"}
	// ASM's own CRD: not part of Istio, installed as a stand-in by asmCRD.
	asmHeaderPropagations = schema.GroupVersionResource{Group: "istio.alibabacloud.com", Version: "v1beta1", Resource: "asmheaderpropagations"}
)

// ingressNamespace is where the user-percentage filters live (the renderer's
// default ingress namespace).
const ingressNamespace = "istio-system"

// istioSystem makes sure the ingress gateway's namespace exists.
func istioSystem(t *testing.T) {
	t.Helper()
	requireCluster(t)
	if err := cluster.CreateNamespace(t.Context(), ingressNamespace); err != nil {
		t.Fatal(err)
	}
}

// gatewayObject is the name of a workload's user-percentage object in the shared
// istio-system: it carries the release's namespace, so that releases in two
// namespaces with the same Deployment names never share one.
func gatewayObject(workload, ns, suffix string) string { return workload + "." + ns + "." + suffix }

// tagHeader is a workload's user-percentage tag header, namespaced likewise.
func tagHeader(workload, ns string) string { return "x-canary-" + workload + "." + ns }

// asmCRDManifest is a minimal stand-in for ASM's ASMHeaderPropagation CRD.
const asmCRDManifest = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: asmheaderpropagations.istio.alibabacloud.com
spec:
  group: istio.alibabacloud.com
  scope: Namespaced
  names:
    kind: ASMHeaderPropagation
    listKind: ASMHeaderPropagationList
    plural: asmheaderpropagations
    singular: asmheaderpropagation
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

// asmCRDOnce installs a minimal stand-in for ASM's ASMHeaderPropagation CRD, once
// per run: the local API server has Istio's CRDs only.
var asmCRDOnce = sync.OnceValue(func() error {
	crd := asmCRDManifest
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.Apply(ctx, "", []byte(crd)); err != nil {
		return err
	}
	c, err := liveClients()
	if err != nil {
		return err
	}
	// Served means in discovery: only then do Helm's applies of the kind work.
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := c.kube.Discovery().ServerResourcesForGroupVersion("istio.alibabacloud.com/v1beta1")
		if err == nil {
			for _, r := range list.APIResources {
				if r.Name == "asmheaderpropagations" {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ASMHeaderPropagation CRD not served after a minute (last error: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
})

func asmCRD(t *testing.T) {
	t.Helper()
	requireCluster(t)
	if err := asmCRDOnce(); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes a values file into the test's temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// routeResult is `helm canary route -o json`: one request's subset, or with --users
// the shares of synthetic users.
type routeResult struct {
	Host           string             `json:"host"`
	Subset         string             `json:"subset"`
	Shares         map[string]float64 `json:"shares"`
	VirtualService string             `json:"virtualService"`
	Route          string             `json:"route"`
}

// route runs the simulator twice on the same request: on the release's deployed
// manifest (`helm canary route RELEASE`) and on the live routing objects read back
// from the API server and piped to `helm canary route` on stdin. Both must agree;
// the release's answer is returned.
func (h *helmEnv) route(t *testing.T, ns, release string, args ...string) routeResult {
	t.Helper()
	fromRelease := h.mustRun(t, append([]string{"canary", "route", release, "-n", ns, "-o", "json"}, args...)...)
	var res routeResult
	if err := json.Unmarshal([]byte(fromRelease), &res); err != nil {
		t.Fatalf("helm canary route %s %v -o json: %v\n%s", release, args, err, fromRelease)
	}
	live := liveRouting(t, ns)
	fromLive, _, err := h.runStdin(t, strings.NewReader(live), append([]string{"canary", "route", "-o", "json"}, args...)...)
	if err != nil {
		t.Fatalf("the simulator on the live objects: %v\nlive objects:\n%s", err, live)
	}
	var liveRes routeResult
	if err := json.Unmarshal([]byte(fromLive), &liveRes); err != nil {
		t.Fatalf("helm canary route %v -o json (live objects on stdin): %v\n%s", args, err, fromLive)
	}
	if !sameRoute(res, liveRes) {
		t.Errorf("simulator %v: the release's manifest says %+v, the live objects say %+v", args, res, liveRes)
	}
	return res
}

// sameRoute compares two answers, shares to 1e-9 (sums of floats).
func sameRoute(a, b routeResult) bool {
	if a.Host != b.Host || a.Subset != b.Subset || a.VirtualService != b.VirtualService || a.Route != b.Route {
		return false
	}
	for _, k := range unionKeys(a.Shares, b.Shares) {
		if math.Abs(a.Shares[k]-b.Shares[k]) > 1e-9 {
			return false
		}
	}
	return true
}

func unionKeys(a, b map[string]float64) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]float64{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// liveRouting is what the simulator reads, as live: the namespace's
// VirtualServices, and the user-tagging filters in istio-system that this
// namespace's releases own (EnvoyFilters, WasmPlugins), as a YAML stream.
func liveRouting(t *testing.T, ns string) string {
	t.Helper()
	var docs []string
	add := func(gvr schema.GroupVersionResource, listNS string, owned bool) {
		list, err := clients(t).dynamic.Resource(gvr).Namespace(listNS).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list %s in %s: %v", gvr.Resource, listNS, err)
		}
		for _, item := range list.Items {
			if owned && item.GetAnnotations()["meta.helm.sh/release-namespace"] != ns {
				continue
			}
			unstructured.RemoveNestedField(item.Object, "metadata", "managedFields")
			data, err := sigsyaml.Marshal(item.Object)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, string(data))
		}
	}
	add(virtualServices, ns, false)
	add(envoyFilters, ingressNamespace, true)
	add(wasmPlugins, ingressNamespace, true)
	return strings.Join(docs, "---\n")
}

// wantShare checks a subset's share within tolerance.
func wantShare(t *testing.T, what string, res routeResult, subset string, want, tolerance float64) {
	t.Helper()
	if got := res.Shares[subset]; math.Abs(got-want) > tolerance {
		t.Errorf("%s: %s share %.4f, want %.4f ± %.4f (shares %v)", what, subset, got, want, tolerance, res.Shares)
	}
}

// wantRoutedTo checks that a request goes whole to one subset.
func wantRoutedTo(t *testing.T, what string, res routeResult, subset string) {
	t.Helper()
	if res.Subset != subset || math.Abs(res.Shares[subset]-1) > 1e-9 {
		t.Errorf("%s: routed to %q with shares %v (route %s), want all to %q", what, res.Subset, res.Shares, res.Route, subset)
	}
}

// httpRoutes is a live VirtualService's spec.http.
func httpRoutes(t *testing.T, ns, name string) []map[string]any {
	t.Helper()
	obj := getIstio(t, virtualServices, ns, name)
	list, _, err := unstructured.NestedSlice(obj.Object, "spec", "http")
	if err != nil {
		t.Fatalf("VirtualService %s/%s: spec.http: %v", ns, name, err)
	}
	out := make([]map[string]any, 0, len(list))
	for _, r := range list {
		m, _ := r.(map[string]any)
		out = append(out, m)
	}
	return out
}

// destinations are a route's destination subsets and weights, in order.
type destination struct {
	subset string
	weight int64
	spec   map[string]any
}

func routeDestinations(route map[string]any) []destination {
	list, _, _ := unstructured.NestedSlice(route, "route")
	var out []destination
	for _, d := range list {
		m, _ := d.(map[string]any)
		subset, _, _ := unstructured.NestedString(m, "destination", "subset")
		w, _, _ := unstructured.NestedInt64(m, "weight")
		out = append(out, destination{subset: subset, weight: w, spec: m})
	}
	return out
}

// wholeTo reports whether a route sends everything to one subset.
func wholeTo(route map[string]any, subset string) bool {
	d := routeDestinations(route)
	return len(d) == 1 && d[0].subset == subset
}

// isWeighted reports whether a route is helm-canary's weighted pair.
func isWeighted(route map[string]any) bool {
	subsets := map[string]bool{}
	for _, d := range routeDestinations(route) {
		subsets[d.subset] = true
	}
	return len(subsets) == 2 && subsets["production"] && subsets["canary"]
}

// headerMatch is the StringMatch a route's match requests put on a header: the
// first match request that names it ({"exact": "jason"}), nil when none does.
func headerMatch(route map[string]any, header string) map[string]any {
	matches, _, _ := unstructured.NestedSlice(route, "match")
	for _, m := range matches {
		mm, _ := m.(map[string]any)
		if sm, ok, _ := unstructured.NestedMap(mm, "headers", header); ok {
			return sm
		}
	}
	return nil
}

// matchRouteAhead finds the route that sends requests matching header (with the
// StringMatch want) whole to the canary, and checks it comes before the weighted
// route. It returns the route's index, -1 when there is none (an error is
// reported).
func matchRouteAhead(t *testing.T, ns, vs, header string, want map[string]any) int {
	t.Helper()
	routes := httpRoutes(t, ns, vs)
	matchAt, weightedAt := -1, -1
	for i, r := range routes {
		if matchAt < 0 && wholeTo(r, "canary") && reflect.DeepEqual(headerMatch(r, header), want) {
			matchAt = i
		}
		if weightedAt < 0 && isWeighted(r) {
			weightedAt = i
		}
	}
	switch {
	case matchAt < 0:
		t.Errorf("VirtualService %s/%s: no route sends %s %v whole to the canary: %v", ns, vs, header, want, routes)
	case weightedAt < 0:
		t.Errorf("VirtualService %s/%s: no weighted production/canary route: %v", ns, vs, routes)
	case matchAt > weightedAt:
		t.Errorf("VirtualService %s/%s: the %s route (#%d) comes after the weighted route (#%d): Istio would never reach it", ns, vs, header, matchAt, weightedAt)
	}
	return matchAt
}

// noCanaryMatchRoute checks that no route sends matching requests whole to the
// canary any more (stable, final).
func noCanaryMatchRoute(t *testing.T, what, ns, vs string) {
	t.Helper()
	for i, r := range httpRoutes(t, ns, vs) {
		if m, _, _ := unstructured.NestedSlice(r, "match"); len(m) > 0 && wholeTo(r, "canary") {
			t.Errorf("%s: VirtualService %s/%s route #%d still sends matching requests to the canary: %v", what, ns, vs, i, r)
		}
	}
}

// absent checks that an object does not exist.
func absent(t *testing.T, gvr schema.GroupVersionResource, ns, name string) {
	t.Helper()
	_, err := clients(t).dynamic.Resource(gvr).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
	switch {
	case err == nil:
		t.Errorf("%s %s/%s still exists", gvr.Resource, ns, name)
	case !apierrors.IsNotFound(err):
		t.Errorf("%s %s/%s get: %v", gvr.Resource, ns, name, err)
	}
}

// notOwned checks that an object, if it exists, does not belong to a release in
// releaseNS (objects in istio-system are shared by the releases of all namespaces).
func notOwned(t *testing.T, gvr schema.GroupVersionResource, ns, name, releaseNS string) {
	t.Helper()
	obj, err := clients(t).dynamic.Resource(gvr).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		t.Errorf("%s %s/%s get: %v", gvr.Resource, ns, name, err)
	case obj.GetAnnotations()["meta.helm.sh/release-namespace"] == releaseNS:
		t.Errorf("%s %s/%s of the release in %s still exists", gvr.Resource, ns, name, releaseNS)
	}
}
