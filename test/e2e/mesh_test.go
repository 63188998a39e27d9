package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	"github.com/helm-canary/helm-canary/internal/promtest"
)

// Issue 12: the routing objects in another cluster than the pods (Alibaba ASM's
// control plane, Istio's config cluster). Two API servers: the data plane's has no
// Istio CRDs, so a routing object that leaked there would be refused and the
// command would fail; the control plane's has Istio's CRDs and ASM's.

var (
	deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	configMaps  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// meshClusters are the two API servers of one test.
type meshClusters struct {
	data, mesh         *localcluster.Cluster
	dataDyn, meshDyn   dynamic.Interface
	dataKube, meshKube string // kubeconfig paths that outlive a stopped server
}

func startMeshClusters(t *testing.T) *meshClusters {
	t.Helper()
	requireCluster(t)
	ctx := t.Context()
	mc := &meshClusters{}
	var err error
	// The data plane runs pods (a canary warms up until its pods are Ready before
	// traffic moves to it); the control plane only stores the routing objects.
	if mc.data, err = localcluster.Start(ctx, localcluster.Options{BinDir: cluster.BinDir(), NoIstioCRDs: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mc.data.Stop)
	if mc.mesh, err = localcluster.Start(ctx, localcluster.Options{BinDir: cluster.BinDir(), APIOnly: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mc.mesh.Stop)
	if err := mc.mesh.Apply(ctx, "", []byte(asmCRDManifest)); err != nil {
		t.Fatal(err)
	}
	if mc.dataDyn, err = dynamic.NewForConfig(mc.data.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	if mc.meshDyn, err = dynamic.NewForConfig(mc.mesh.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	// Copies: a stopped cluster removes its own directory, kubeconfig included,
	// and the test then needs its server's address to be unreachable, not unknown.
	dir := t.TempDir()
	mc.dataKube, mc.meshKube = filepath.Join(dir, "data.kubeconfig"), filepath.Join(dir, "mesh.kubeconfig")
	for from, to := range map[string]string{mc.data.Kubeconfig(): mc.dataKube, mc.mesh.Kubeconfig(): mc.meshKube} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The gateway's objects (EnvoyFilter, WasmPlugin) live in istio-system.
	if err := mc.mesh.CreateNamespace(ctx, ingressNamespace); err != nil {
		t.Fatal(err)
	}
	waitServed(t, mc.mesh, "istio.alibabacloud.com/v1beta1", "asmheaderpropagations")
	return mc
}

// waitServed waits until a resource is in a cluster's discovery.
func waitServed(t *testing.T, c *localcluster.Cluster, gv, plural string) {
	t.Helper()
	kc, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: strings.Split(gv, "/")[0], Version: strings.Split(gv, "/")[1], Resource: plural}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := kc.Resource(gvr).List(t.Context(), metav1.ListOptions{Limit: 1})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s not served after a minute: %v", gv, plural, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// meshHelm is helm with the plugin, the data plane as its cluster and the control
// plane as the mesh cluster, through the environment variable.
func (mc *meshClusters) helm(t *testing.T, major int, ns string) *helmEnv {
	t.Helper()
	h := newHelmEnv(t, major).with("KUBECONFIG="+mc.dataKube, "HELM_CANARY_MESH_KUBECONFIG="+mc.meshKube)
	if err := mc.data.CreateNamespace(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return h
}

func getObject(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, bool) {
	t.Helper()
	obj, err := dyn.Resource(gvr).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return obj, true
}

// weightsIn are the weights of a VirtualService's weighted route (the last one).
func weightsIn(t *testing.T, dyn dynamic.Interface, ns, name string) map[string]int64 {
	t.Helper()
	vs, ok := getObject(t, dyn, virtualServices, ns, name)
	if !ok {
		t.Fatalf("VirtualService %s/%s is not in the mesh cluster", ns, name)
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	out := map[string]int64{}
	for _, r := range routes {
		m, _ := r.(map[string]any)
		if isWeighted(m) {
			for _, d := range routeDestinations(m) {
				out[d.subset] = d.weight
			}
		}
	}
	return out
}

// checkSides checks what each cluster holds of a release at a step: the
// Deployments only in the data plane, the routing objects only in the mesh cluster
// with these weights.
func (mc *meshClusters) checkSides(t *testing.T, step, ns string, canaryReplicas map[string]int64, weights map[string]map[string]int64) {
	t.Helper()
	for name, want := range canaryReplicas {
		d, ok := getObject(t, mc.dataDyn, deployments, ns, name+"-canary")
		if !ok {
			t.Errorf("%s: Deployment %s-canary is not in the data-plane cluster", step, name)
			continue
		}
		if got, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); got != want {
			t.Errorf("%s: %s-canary has %d replicas, want %d", step, name, got, want)
		}
		if _, ok := getObject(t, mc.meshDyn, deployments, ns, name); ok {
			t.Errorf("%s: Deployment %s is in the mesh cluster", step, name)
		}
	}
	for vs, want := range weights {
		// No weights wanted: routed by host, as right after adoption.
		if got := weightsIn(t, mc.meshDyn, ns, vs); len(want) > 0 && fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: VirtualService %s weights %v in the mesh cluster, want %v", step, vs, got, want)
		}
		if _, ok := getObject(t, mc.meshDyn, destinationRules, ns, vs); !ok {
			t.Errorf("%s: DestinationRule %s is not in the mesh cluster", step, vs)
		}
	}
}

// revisionTimes is each release's newest revision and when it was deployed.
type revisionTime struct {
	Revision int       `json:"revision"`
	Updated  time.Time `json:"updated"`
	Status   string    `json:"status"`
}

func (mc *meshClusters) newest(t *testing.T, h *helmEnv, kubeconfig, release, ns string) revisionTime {
	t.Helper()
	out, stderr, err := h.run(t, "history", release, "-n", ns, "-o", "json", "--kubeconfig", kubeconfig)
	if err != nil && strings.Contains(stderr, "not found") {
		return revisionTime{}
	}
	if err != nil {
		t.Fatal(err)
	}
	var hist []revisionTime
	if err := json.Unmarshal([]byte(out), &hist); err != nil || len(hist) == 0 {
		t.Fatalf("helm history %s: %v\n%s", release, err, out)
	}
	return hist[len(hist)-1]
}

// stageInOrder runs a stage command and checks that it made one revision on each
// side, in this order: meshFirst, or the workloads first.
func (mc *meshClusters) stageInOrder(t *testing.T, h *helmEnv, ns, release string, meshFirst bool, args ...string) string {
	t.Helper()
	return mc.inOrder(t, h, ns, release, release+"-mesh", meshFirst, append([]string{"canary", "stage", "-n", ns}, args...)...)
}

// inOrder is stageInOrder for any helm command, with the companion release named.
func (mc *meshClusters) inOrder(t *testing.T, h *helmEnv, ns, release, meshRelease string, meshFirst bool, args ...string) string {
	t.Helper()
	before := mc.newest(t, h, mc.dataKube, release, ns).Revision
	out := h.mustRun(t, args...)
	w := mc.newest(t, h, mc.dataKube, release, ns)
	m := mc.newest(t, h, mc.meshKube, meshRelease, ns)
	if w.Revision <= before {
		t.Errorf("stage %v: no new revision of %s (still %d)", args, release, w.Revision)
	}
	if meshFirst != m.Updated.Before(w.Updated) {
		t.Errorf("stage %v: the mesh cluster's revision %d at %s, the workload cluster's %d at %s; want the mesh first: %v",
			args, m.Revision, m.Updated.Format(time.RFC3339Nano), w.Revision, w.Updated.Format(time.RFC3339Nano), meshFirst)
	}
	return out
}

// meshStatus is `helm canary status -o json`, the parts this test reads.
type meshStatusJSON struct {
	Stage     string `json:"stage"`
	Workloads []struct {
		Name    string           `json:"name"`
		Weights map[string]int64 `json:"weights"`
		Drift   []string         `json:"drift"`
	} `json:"workloads"`
	Mesh *struct {
		Release  string `json:"release"`
		Revision int    `json:"revision"`
		Stage    string `json:"stage"`
		InStep   bool   `json:"inStep"`
	} `json:"mesh"`
}

func meshStatusOf(t *testing.T, h *helmEnv, ns, release string) meshStatusJSON {
	t.Helper()
	out := h.mustRun(t, "canary", "status", release, "-n", ns, "-o", "json")
	var st meshStatusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if st.Mesh == nil {
		t.Fatalf("status reports no mesh cluster:\n%s", out)
	}
	return st
}

// TestMeshClusterSeed002ASM replays seed 002 on ASM with the routing objects in the
// control plane: app-a and app-b at 10% of users, app-c at 50% then finished
// first, its tagging rule gone; then a failure between the two upgrades of a stage
// and its repair, and a mesh cluster that cannot be reached.
func TestMeshCluster(t *testing.T) {
	mc := startMeshClusters(t)
	var ns3 string
	t.Run("replays", func(t *testing.T) {
		for _, major := range []int{3, 4} {
			t.Run(fmt.Sprintf("seed002-asm/helm%d", major), func(t *testing.T) {
				t.Parallel()
				ns := newNamespace(t)
				h := mc.helm(t, major, ns)
				if major == 3 {
					ns3 = ns
				}
				mc.seed002(t, h, ns)
			})
			t.Run(fmt.Sprintf("seed000-cookie/helm%d", major), func(t *testing.T) {
				t.Parallel()
				ns := newNamespace(t)
				mc.seed000(t, mc.helm(t, major, ns), ns)
			})
			t.Run(fmt.Sprintf("rollout/helm%d", major), func(t *testing.T) {
				t.Parallel()
				ns := newNamespace(t)
				mc.rollout(t, mc.helm(t, major, ns), ns)
			})
			t.Run(fmt.Sprintf("rollback-stored-manifest/helm%d", major), func(t *testing.T) {
				t.Parallel()
				ns := newNamespace(t)
				mc.rollbackStoredManifest(t, mc.helm(t, major, ns), ns)
			})
		}
	})
	if ns3 == "" {
		return
	}
	// A Helm home of its own: the subtests' went with them.
	h3 := newHelmEnv(t, 3).with("KUBECONFIG="+mc.dataKube, "HELM_CANARY_MESH_KUBECONFIG="+mc.meshKube)
	// The mesh cluster's API server goes away: a stage command stops before it
	// changes anything in the workload cluster, and says why.
	before := mc.newest(t, h3, mc.dataKube, "ac", ns3).Revision
	mc.mesh.Stop()
	_, stderr, err := h3.run(t, "canary", "stage", "-n", ns3, "10", "ac", "--workload", "app-a", "--timeout", "20s")
	if err == nil {
		t.Fatal("stage 10 with the mesh cluster's API server stopped succeeded")
	}
	t.Logf("with the mesh cluster stopped:\n%s", stderr)
	for _, want := range []string{"mesh cluster", "nothing was changed"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stage with the mesh cluster stopped: the error lacks %q:\n%s", want, stderr)
		}
	}
	if after := mc.newest(t, h3, mc.dataKube, "ac", ns3).Revision; after != before {
		t.Errorf("stage with the mesh cluster stopped made revision %d of the workload release (was %d)", after, before)
	}

	// status reports what the workload cluster holds, says plainly that the mesh
	// cluster could not be read, and exits non-zero; route names the mesh cluster.
	stdout, stderr, err := h3.run(t, "canary", "status", "ac", "-n", ns3)
	t.Logf("status with the mesh cluster stopped:\n%s%s", stdout, stderr)
	if err == nil {
		t.Error("status with the mesh cluster stopped exited 0")
	}
	for _, want := range []string{"app-a", "asm-mock:v0.1-java", "NOT READ", mc.meshKube, "connection refused", "--mesh-kubeconfig"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status with the mesh cluster stopped: the report lacks %q", want)
		}
	}
	if !strings.Contains(stderr, "could not be read") {
		t.Errorf("status with the mesh cluster stopped: stderr lacks the error")
	}
	stdout, _, err = h3.run(t, "canary", "status", "ac", "-n", ns3, "-o", "json")
	if err == nil {
		t.Error("status -o json with the mesh cluster stopped exited 0")
	}
	var st struct {
		Workloads []map[string]any `json:"workloads"`
		Mesh      struct {
			Release string `json:"release"`
			Status  string `json:"status"`
			Error   string `json:"error"`
		} `json:"mesh"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status -o json with the mesh cluster stopped: %v\n%s", err, stdout)
	}
	if st.Mesh.Status != "unreachable" || st.Mesh.Release != "ac-mesh" || !strings.Contains(st.Mesh.Error, mc.meshKube) {
		t.Errorf("status -o json with the mesh cluster stopped: mesh %+v, want ac-mesh unreachable with the error naming %s", st.Mesh, mc.meshKube)
	}
	if len(st.Workloads) != 3 {
		t.Errorf("status -o json with the mesh cluster stopped: %d workloads, want app-a, app-b, app-c", len(st.Workloads))
	}
	for _, w := range st.Workloads {
		if _, ok := w["weights"]; ok {
			t.Errorf("status -o json with the mesh cluster stopped: %v has weights, which it cannot know", w["name"])
		}
		if _, ok := w["images"]; !ok {
			t.Errorf("status -o json with the mesh cluster stopped: %v has no images", w["name"])
		}
	}
	_, stderr, err = h3.run(t, "canary", "route", "ac", "-n", ns3, "--host", "app-a")
	if err == nil {
		t.Error("route with the mesh cluster stopped succeeded")
	}
	for _, want := range []string{"route reads its routing objects from the mesh cluster", mc.meshKube, "--mesh-kubeconfig"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("route with the mesh cluster stopped: the error lacks %q:\n%s", want, stderr)
		}
	}
}

// seed002 is seed 002 on ASM, the routes in the mesh cluster.
func (mc *meshClusters) seed002(t *testing.T, h *helmEnv, ns string) {
	chart := filepath.Join(h.checkout, "test", "charts", "appchain")
	users := writeFile(t, "users.yaml", usersASMValues)
	wasm := func(workload string) (*unstructured.Unstructured, bool) {
		return getObject(t, mc.meshDyn, wasmPlugins, ingressNamespace, gatewayObject(workload, ns, "hash-tagging"))
	}
	usersTo := func(host string) routeResult {
		t.Helper()
		out := h.mustRun(t, "canary", "route", "ac", "-n", ns, "-o", "json", "--host", host, "--users", "10000", "--user-header", "x-user-id")
		var r routeResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}

	// Installed through the flag; later commands find the mesh cluster through
	// the environment variable.
	mc.stageInOrder(t, h, ns, "ac", false, "stable", "ac", chart, "--install", "--mesh-kubeconfig", mc.meshKube)
	// A first install routes by host until production's pods carry the track
	// label (hazard 2): the routing objects are there, with no weighted pair yet.
	mc.checkSides(t, "stable", ns, map[string]int64{"app-a": 0, "app-c": 0},
		map[string]map[string]int64{"app-a": {}, "app-c": {}})
	if got := valueAt(h.releaseValues(t, "ac", ns), "canary.meshCluster.release"); got != "ac-mesh" {
		t.Errorf("the release keeps canary.meshCluster.release %q, want ac-mesh", got)
	}

	mc.stageInOrder(t, h, ns, "ac", false, "10", "ac", "--workload", "app-a", "--workload", "app-b", "-f", users, "--set", "a.tag=v2", "--set", "b.tag=v2")
	mc.stageInOrder(t, h, ns, "ac", false, "50", "ac", "--workload", "app-c", "--set", "c.tag=v3")
	mc.checkSides(t, "a, b at 10, c at 50", ns, map[string]int64{"app-a": 1, "app-b": 1, "app-c": 1},
		map[string]map[string]int64{"app-a": {"production": 90, "canary": 10}, "app-b": {"production": 90, "canary": 10}, "app-c": {"production": 50, "canary": 50}})
	for _, w := range []string{"app-a", "app-b", "app-c"} {
		if _, ok := wasm(w); !ok {
			t.Errorf("WasmPlugin %s is not in the mesh cluster", gatewayObject(w, ns, "hash-tagging"))
		}
		if _, ok := getObject(t, mc.meshDyn, asmHeaderPropagations, ns, w+"-tag-propagation"); !ok {
			t.Errorf("ASMHeaderPropagation %s-tag-propagation is not in the mesh cluster", w)
		}
	}
	wantShare(t, "app-a: 10000 users", usersTo("app-a"), "canary", 0.10, 0.015)
	wantShare(t, "app-c: 10000 users", usersTo("app-c"), "canary", 0.50, 0.015)
	st := meshStatusOf(t, h, ns, "ac")
	if !st.Mesh.InStep || st.Mesh.Release != "ac-mesh" {
		t.Errorf("status: mesh %+v, want ac-mesh in step", *st.Mesh)
	}
	for _, w := range st.Workloads {
		if w.Name == "app-c" && (w.Weights["production"] != 50 || w.Weights["canary"] != 50) {
			t.Errorf("status: app-c weights %v, want 50/50 (read from the mesh cluster)", w.Weights)
		}
		if len(w.Drift) > 0 {
			t.Errorf("status: %s drift %v, want none", w.Name, w.Drift)
		}
	}

	// app-c finishes first: toward the canary, the workloads first; final,
	// the mesh first. Its tagging rule goes, app-a's and app-b's stay.
	mc.stageInOrder(t, h, ns, "ac", false, "100", "ac", "--workload", "app-c")
	mc.stageInOrder(t, h, ns, "ac", true, "swap", "ac", "--workload", "app-c")
	mc.stageInOrder(t, h, ns, "ac", true, "final", "ac", "--workload", "app-c", "--drain-time", "0s")
	mc.checkSides(t, "app-c at final", ns, map[string]int64{"app-a": 1, "app-c": 0},
		map[string]map[string]int64{"app-a": {"production": 90, "canary": 10}, "app-c": {"production": 100, "canary": 0}})
	if _, ok := wasm("app-c"); ok {
		t.Errorf("app-c at final: its WasmPlugin is still in the mesh cluster")
	}
	if _, ok := wasm("app-a"); !ok {
		t.Errorf("app-c at final: app-a's WasmPlugin is gone")
	}
	wantShare(t, "app-c at final: 10000 users", usersTo("app-c"), "production", 1, 1e-9)

	// A failure between the two upgrades: the mesh cluster refuses updates of
	// VirtualServices; the workloads go to 90, the routes stay at 10.
	freeze := freezeRoutes(t, mc, ns, "app-a")
	_, stderr, err := h.run(t, "canary", "stage", "-n", ns, "90", "ac", "--workload", "app-a")
	if err == nil {
		t.Fatal("stage 90 with the mesh cluster refusing the routes succeeded")
	}
	t.Logf("the half-applied stage:\n%s", stderr)
	for _, want := range []string{"half applied", `the workload cluster's release "ac" is at revision`, `the mesh cluster's release "ac-mesh"`, "run the same command again", "helm canary rollback ac"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the half-applied stage's error lacks %q:\n%s", want, stderr)
		}
	}
	mc.checkSides(t, "after the failed mesh upgrade", ns, map[string]int64{"app-a": 1},
		map[string]map[string]int64{"app-a": {"production": 90, "canary": 10}})
	st = meshStatusOf(t, h, ns, "ac")
	if st.Mesh.InStep {
		t.Errorf("status after the failed mesh upgrade: the mesh is reported in step")
	}
	drift := ""
	for _, w := range st.Workloads {
		drift += strings.Join(w.Drift, "\n")
	}
	if !strings.Contains(drift, `the mesh cluster's release "ac-mesh"`) {
		t.Errorf("status after the failed mesh upgrade reports no drift of the mesh cluster: %v", drift)
	}
	// The repair: the same command again.
	freeze()
	mc.stageInOrder(t, h, ns, "ac", false, "90", "ac", "--workload", "app-a")
	mc.checkSides(t, "app-a at 90, repaired", ns, map[string]int64{"app-a": 1},
		map[string]map[string]int64{"app-a": {"production": 10, "canary": 90}})
	if st := meshStatusOf(t, h, ns, "ac"); !st.Mesh.InStep {
		t.Errorf("status after the repair: mesh not in step: %+v", *st.Mesh)
	}

	// Hand edits in the mesh cluster are drift, and the next stage repairs them.
	vs, _ := getObject(t, mc.meshDyn, virtualServices, ns, "app-b")
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	last := routes[len(routes)-1].(map[string]any)
	dests := last["route"].([]any)
	dests[0].(map[string]any)["weight"], dests[1].(map[string]any)["weight"] = int64(50), int64(50)
	if err := unstructured.SetNestedSlice(vs.Object, routes, "spec", "http"); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.meshDyn.Resource(virtualServices).Namespace(ns).Update(t.Context(), vs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out := h.mustRun(t, "canary", "status", "ac", "-n", ns); !strings.Contains(out, "VirtualService app-b routes") {
		t.Errorf("status does not report the hand edit in the mesh cluster:\n%s", out)
	}

	// The a/b team rolls back: the routes first, then the pods.
	mc.stageInOrder(t, h, ns, "ac", true, "stable", "ac", "--workload", "app-a", "--workload", "app-b")
	mc.checkSides(t, "a, b rolled back", ns, map[string]int64{"app-a": 0, "app-b": 0},
		map[string]map[string]int64{"app-a": {"production": 100, "canary": 0}, "app-b": {"production": 100, "canary": 0}})
	for _, w := range []string{"app-a", "app-b"} {
		if _, ok := wasm(w); ok {
			t.Errorf("after the rollback: %s's WasmPlugin is still there", w)
		}
	}

	// Without being told where the mesh cluster is, a release that keeps its
	// routes there is refused, and nothing changes.
	bare := h.with("HELM_CANARY_MESH_KUBECONFIG=")
	before := mc.newest(t, h, mc.dataKube, "ac", ns).Revision
	if _, stderr, err := bare.run(t, "canary", "stage", "-n", ns, "10", "ac", "--workload", "app-a"); err == nil || !strings.Contains(stderr, "--mesh-kubeconfig") {
		t.Errorf("stage without the mesh cluster: %v\n%s; want a refusal naming --mesh-kubeconfig", err, stderr)
	}
	if after := mc.newest(t, h, mc.dataKube, "ac", ns).Revision; after != before {
		t.Errorf("the refused command made revision %d", after)
	}
}

// productionImage is the image production's Deployment runs in the data-plane cluster.
func (mc *meshClusters) productionImage(t *testing.T, ns string) string {
	t.Helper()
	d, ok := getObject(t, mc.dataDyn, deployments, ns, "productpage")
	if !ok {
		t.Fatal("no Deployment productpage in the data-plane cluster")
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	img, _, _ := unstructured.NestedString(containers[0].(map[string]any), "image")
	return img
}

// seed000 is seed 000's blue-green with the gray=true cookie, the routes in the mesh
// cluster, with a rollback from 100 and one after swap.
func (mc *meshClusters) seed000(t *testing.T, h *helmEnv, ns string) {
	gray := writeFile(t, "gray.yaml", grayValues)
	cookieRoute := func(step string, want bool) {
		t.Helper()
		vs, _ := getObject(t, mc.meshDyn, virtualServices, ns, "product-page-svc")
		routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		found := false
		for _, r := range routes {
			if headerMatch(r.(map[string]any), "cookie") != nil {
				found = true
			}
		}
		if found != want {
			t.Errorf("%s: the cookie route is there: %v, want %v", step, found, want)
		}
	}
	routeTo := func(step string, want string, args ...string) {
		t.Helper()
		out := h.mustRun(t, append([]string{"canary", "route", "pp", "-n", ns, "-o", "json", "--host", "product-page-svc"}, args...)...)
		var r routeResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		wantRoutedTo(t, step, r, want)
	}
	svc := "product-page-svc"
	mc.stageInOrder(t, h, ns, "pp", false, "stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83")
	mc.stageInOrder(t, h, ns, "pp", false, "preview", "pp", "-f", gray, "--set", "image.tag=84")
	mc.checkSides(t, "preview", ns, map[string]int64{"productpage": 2}, map[string]map[string]int64{svc: {"production": 100, "canary": 0}})
	cookieRoute("preview", true)
	routeTo("gray=true at preview", "canary", "--cookie", "gray=true")
	routeTo("no cookie at preview", "production")
	mc.stageInOrder(t, h, ns, "pp", false, "100", "pp")
	mc.checkSides(t, "100", ns, map[string]int64{"productpage": 2}, map[string]map[string]int64{svc: {"production": 0, "canary": 100}})

	// Rollback from 100: the routes back to production first, then the canary goes.
	mc.stageInOrder(t, h, ns, "pp", true, "stable", "pp")
	mc.checkSides(t, "rolled back from 100", ns, map[string]int64{"productpage": 0}, map[string]map[string]int64{svc: {"production": 100, "canary": 0}})
	cookieRoute("rolled back from 100", false)
	if got := mc.productionImage(t, ns); !strings.HasSuffix(got, ":83") {
		t.Errorf("production after the rollback from 100 runs %s, want 83", got)
	}

	// Again, through swap, then rolled back: production rolls back to 83 too.
	mc.stageInOrder(t, h, ns, "pp", false, "preview", "pp", "-f", gray, "--set", "image.tag=84")
	mc.stageInOrder(t, h, ns, "pp", false, "100", "pp")
	mc.stageInOrder(t, h, ns, "pp", true, "swap", "pp")
	if got := mc.productionImage(t, ns); !strings.HasSuffix(got, ":84") {
		t.Errorf("production at swap runs %s, want 84", got)
	}
	mc.checkSides(t, "swap", ns, map[string]int64{"productpage": 2}, map[string]map[string]int64{svc: {"production": 0, "canary": 100}})
	routeTo("no cookie at swap", "canary")
	mc.stageInOrder(t, h, ns, "pp", true, "stable", "pp")
	if got := mc.productionImage(t, ns); !strings.HasSuffix(got, ":83") {
		t.Errorf("production after the rollback from swap runs %s, want 83", got)
	}
	mc.checkSides(t, "rolled back after swap", ns, map[string]int64{"productpage": 0}, map[string]map[string]int64{svc: {"production": 100, "canary": 0}})
	cookieRoute("rolled back after swap", false)
	routeTo("gray=true after the rollback", "production", "--cookie", "gray=true")
	if st := meshStatusOf(t, h, ns, "pp"); !st.Mesh.InStep || st.Stage != "stable" {
		t.Errorf("status after the rollbacks: stage %s, mesh %+v", st.Stage, *st.Mesh)
	}
}

// freezeRoutes makes the mesh cluster refuse every change to VirtualServices in
// ns (a ValidatingAdmissionPolicy), and returns the function that lifts it; vs is
// one there, to see the policy take effect.
func freezeRoutes(t *testing.T, mc *meshClusters, ns, vsName string) func() {
	t.Helper()
	return freeze(t, mc.mesh, mc.meshDyn, virtualServices, ns, vsName)
}

// freezeDeployments makes the data-plane cluster refuse every change to
// Deployments in ns; probe is one there.
func freezeDeployments(t *testing.T, mc *meshClusters, ns, probe string) func() {
	t.Helper()
	return freeze(t, mc.data, mc.dataDyn, deployments, ns, probe)
}

// freeze makes cluster c refuse every change to one resource in ns, and returns
// the function that lifts it; probe is an object of it there, to see the policy
// take effect.
func freeze(t *testing.T, c *localcluster.Cluster, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, probe string) func() {
	t.Helper()
	// Cluster-wide and a DNS subdomain: the whole namespace in it keeps parallel
	// tests' policies apart.
	name := "freeze-" + gvr.Resource + "." + ns
	policy := fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: %[1]s
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["%[3]s"]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [%[4]s]
  validations:
  - expression: "false"
    message: routes frozen by the test
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: %[1]s
spec:
  policyName: %[1]s
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: %[2]s
`, name, ns, gvr.Group, gvr.Resource)
	ctx := t.Context()
	if err := c.Apply(ctx, "", []byte(policy)); err != nil {
		t.Fatal(err)
	}
	// The policy takes effect once compiled: wait until a dry-run update is denied.
	obj, ok := getObject(t, dyn, gvr, ns, probe)
	if !ok {
		t.Fatalf("no %s %s to freeze", gvr.Resource, probe)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := dyn.Resource(gvr).Namespace(ns).Update(ctx, obj, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "frozen") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admission policy does not deny %s updates after a minute: %v", gvr.Resource, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return func() {
		t.Helper()
		policies := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}
		if err := dyn.Resource(policies).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			_, err := dyn.Resource(gvr).Namespace(ns).Update(ctx, obj, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			if err == nil || !strings.Contains(err.Error(), "frozen") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s updates still denied a minute after the policy's binding went: %v", gvr.Resource, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// TestMeshClusterPipeline: README's pipeline mode, two helm upgrades per stage, one
// per cluster, each post-rendering its part (--part) with production pinned from
// the workload release; Helm 3 and Helm 4.
func TestMeshClusterPipeline(t *testing.T) {
	mc := startMeshClusters(t)
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			h := mc.helm(t, major, ns)
			pin := func(stage, part string) []string {
				return h.postRenderer("--stage="+stage, "--part="+part, "--release=shop", "--namespace="+ns, "--kubeconfig="+mc.dataKube)
			}
			workloads := func(stage, tag string) {
				t.Helper()
				h.mustRun(t, append([]string{"upgrade", "--install", "shop", h.chartDir(), "-n", ns, "--set", "image.tag=" + tag}, pin(stage, "workloads")...)...)
			}
			mesh := func(stage, tag string) {
				t.Helper()
				h.mustRun(t, append([]string{"upgrade", "--install", "shop-mesh", h.chartDir(), "-n", ns, "--kubeconfig", mc.meshKube, "--set", "image.tag=" + tag, "--no-hooks", "--create-namespace"}, pin(stage, "mesh")...)...)
			}
			svc := "product-page-svc"
			workloads("stable", "83")
			mesh("stable", "83")
			mc.checkSides(t, "stable", ns, map[string]int64{"productpage": 0}, map[string]map[string]int64{svc: {}})
			// Toward the canary: the pods, then the routes.
			workloads("10", "84")
			mesh("10", "84")
			mc.checkSides(t, "10", ns, map[string]int64{"productpage": 2}, map[string]map[string]int64{svc: {"production": 90, "canary": 10}})
			if manifest := h.mustRun(t, "get", "manifest", "shop-mesh", "-n", ns, "--kubeconfig", mc.meshKube); strings.Contains(manifest, "kind: Deployment") || strings.Contains(manifest, "kind: Service\n") {
				t.Errorf("the mesh release holds workloads:\n%s", manifest)
			}
			workloads("100", "84")
			mesh("100", "84")
			mc.checkSides(t, "100", ns, map[string]int64{"productpage": 2}, map[string]map[string]int64{svc: {"production": 0, "canary": 100}})
			// Away from it: the routes, then the pods.
			mesh("stable", "83")
			mc.checkSides(t, "stable, routes first", ns, map[string]int64{"productpage": 2}, map[string]map[string]int64{svc: {"production": 100, "canary": 0}})
			workloads("stable", "83")
			mc.checkSides(t, "stable", ns, map[string]int64{"productpage": 0}, map[string]map[string]int64{svc: {"production": 100, "canary": 0}})
		})
	}
}

// rollbackStoredManifest: `helm canary rollback RELEASE` without CHART, for a
// release whose stored chart cannot be rendered again (a bitnami-style common
// library and an aliased subchart, which Helm does not store, and which were not
// kept: the release was installed by a pipeline's two helm upgrades, one per
// cluster). Both sides go back to their stable revision's stored objects, the
// routes first; from 10, and after swap.
func (mc *meshClusters) rollbackStoredManifest(t *testing.T, h *helmEnv, ns string) {
	chart := h.commonChart()
	// The chart names its objects after the release (bitnami's fullname), so the
	// pipeline's mesh release has the workload release's name, in the other
	// cluster, and helm-canary is told it is the companion.
	h = h.with("HELM_CANARY_MESH_RELEASE=" + commonRelease)
	pin := func(part string) []string {
		return h.postRenderer("--stage=stable", "--part="+part, "--release="+commonRelease, "--namespace="+ns, "--kubeconfig="+mc.dataKube)
	}
	h.mustRun(t, append([]string{"upgrade", "--install", commonRelease, chart, "-n", ns, "--set", "image.tag=83"}, pin("workloads")...)...)
	h.mustRun(t, append([]string{"upgrade", "--install", commonRelease, chart, "-n", ns, "--kubeconfig", mc.meshKube, "--set", "image.tag=83", "--no-hooks", "--create-namespace"}, pin("mesh")...)...)
	inOrder := func(meshFirst bool, args ...string) string {
		t.Helper()
		return mc.inOrder(t, h, ns, commonRelease, commonRelease, meshFirst, args...)
	}
	stage := func(meshFirst bool, args ...string) {
		t.Helper()
		inOrder(meshFirst, append([]string{"canary", "stage", "-n", ns}, args...)...)
	}

	image := func(name string) string {
		t.Helper()
		d, ok := getObject(t, mc.dataDyn, deployments, ns, name)
		if !ok {
			t.Fatalf("no Deployment %s in the data-plane cluster", name)
		}
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		img, _, _ := unstructured.NestedString(containers[0].(map[string]any), "image")
		return img
	}
	wantStable := func(step string) {
		t.Helper()
		mc.checkSides(t, step, ns, map[string]int64{commonName: 0}, map[string]map[string]int64{commonName: {}})
		// The revision restored may be a first install, which routes by host
		// (hazard 2): all traffic on production either way.
		if got := weightsIn(t, mc.meshDyn, ns, commonName); fmt.Sprint(got) != fmt.Sprint(map[string]int64{"production": 100, "canary": 0}) && fmt.Sprint(got) != fmt.Sprint(map[string]int64{"": 100}) {
			t.Errorf("%s: VirtualService %s routes %v in the mesh cluster, want all traffic on production", step, commonName, got)
		}
		if got := image(commonName); !strings.HasSuffix(got, ":83") {
			t.Errorf("%s: production runs %s, want 83", step, got)
		}
		// The objects rendered through the dependencies are still there.
		for _, name := range []string{commonName + "-settings", commonRelease + "-metrics"} {
			if _, ok := getObject(t, mc.dataDyn, configMaps, ns, name); !ok {
				t.Errorf("%s: ConfigMap %s (rendered through a dependency) is not in the data-plane cluster", step, name)
			}
		}
		values := h.releaseValues(t, commonRelease, ns)
		if got := valueAt(values, "canary.meshCluster.release"); got != commonRelease {
			t.Errorf("%s: the release keeps canary.meshCluster.release %q, want %s", step, got, commonRelease)
		}
		st := meshStatusOf(t, h, ns, commonRelease)
		if st.Stage != "stable" || !st.Mesh.InStep {
			t.Errorf("%s: status says stage %s, mesh %+v; want stable, in step", step, st.Stage, *st.Mesh)
		}
		for _, w := range st.Workloads {
			if len(w.Drift) > 0 {
				t.Errorf("%s: status: %s drift %v, want none", step, w.Name, w.Drift)
			}
		}
	}
	rollback := func(step string) {
		t.Helper()
		before := mc.newest(t, h, mc.dataKube, commonRelease, ns).Revision
		stdout, stderr, err := h.run(t, "canary", "rollback", commonRelease, "-n", ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s:\n%s%s", step, stderr, stdout)
		for _, want := range []string{"the routes first", "manifest re-applied", "routing objects re-applied"} {
			if !strings.Contains(stdout+stderr, want) {
				t.Errorf("%s: the output lacks %q", step, want)
			}
		}
		w := mc.newest(t, h, mc.dataKube, commonRelease, ns)
		m := mc.newest(t, h, mc.meshKube, commonRelease, ns)
		if w.Revision != before+1 || !m.Updated.Before(w.Updated) {
			t.Errorf("%s: the workload release at revision %d (was %d) at %s, the mesh release's revision %d at %s; want one revision each, the mesh first",
				step, w.Revision, before, w.Updated.Format(time.RFC3339Nano), m.Revision, m.Updated.Format(time.RFC3339Nano))
		}
		wantStable(step)
	}

	stage(false, "10", commonRelease, chart, "--set", "image.tag=84")
	mc.checkSides(t, "10", ns, map[string]int64{commonName: 2}, map[string]map[string]int64{commonName: {"production": 90, "canary": 10}})

	// The mesh cluster refuses the routes: the rollback stops before the
	// workload cluster, says so, and the same command then finishes it.
	freeze := freezeRoutes(t, mc, ns, commonName)
	before := mc.newest(t, h, mc.dataKube, commonRelease, ns).Revision
	_, stderr, err := h.run(t, "canary", "rollback", commonRelease, "-n", ns)
	if err == nil {
		t.Fatal("the rollback with the mesh cluster refusing the routes succeeded")
	}
	t.Logf("the rollback with the routes refused:\n%s", stderr)
	for _, want := range []string{`the mesh cluster's release "web"`, "nothing was changed in the workload cluster", `the release "web" is at revision`, "run the same command again"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the refused rollback's error lacks %q", want)
		}
	}
	if after := mc.newest(t, h, mc.dataKube, commonRelease, ns).Revision; after != before {
		t.Errorf("the refused rollback made revision %d of the workload release (was %d)", after, before)
	}
	mc.checkSides(t, "after the refused rollback", ns, map[string]int64{commonName: 2}, map[string]map[string]int64{commonName: {"production": 90, "canary": 10}})
	freeze()

	// The routes go back, then the workload cluster refuses the Deployments: the
	// rollback is half applied, says so with each side's state, and the same
	// command finishes it.
	freeze = freezeDeployments(t, mc, ns, commonName)
	_, stderr, err = h.run(t, "canary", "rollback", commonRelease, "-n", ns, "--timeout", "20s")
	if err == nil {
		t.Fatal("the rollback with the workload cluster refusing the Deployments succeeded")
	}
	t.Logf("the rollback with the Deployments refused:\n%s", stderr)
	for _, want := range []string{"half applied", `the mesh cluster's release "web"`, "all traffic to production", `the workload cluster's rollback to revision 1 failed`, `the release "web" is at revision`, "run the same command again"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the half-applied rollback's error lacks %q", want)
		}
	}
	if got := weightsIn(t, mc.meshDyn, ns, commonName); got["canary"] != 0 {
		t.Errorf("after the half-applied rollback: the mesh cluster routes %v, want all on production", got)
	}
	freeze()
	rollback("rollback from 10")

	stage(false, "10", commonRelease, chart, "--set", "image.tag=84")
	stage(false, "100", commonRelease, chart)
	stage(true, "swap", commonRelease, chart)
	if got := image(commonName); !strings.HasSuffix(got, ":84") {
		t.Errorf("production at swap runs %s, want 84", got)
	}
	rollback("rollback after swap")
}

// rollout: `helm canary rollout` with the routes in the mesh cluster, against the
// real Prometheus of rollout_test.go. A good canary promotes through its steps,
// each step's weights landing in the mesh cluster (read there at each step's
// webhook); a canary whose error rate rises is rolled back, both sides to stable.
func (mc *meshClusters) rollout(t *testing.T, h *helmEnv, ns string) {
	m := rolloutEnv(t)
	svc := "product-page-svc"
	mc.stageInOrder(t, h, ns, "pp", false, "stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83", "--wait", "--timeout", "60s")
	m.Set(ns, "productpage", healthy)
	m.Set(ns, "productpage-canary", healthy)
	// The weights in the mesh cluster when each step's webhook is called: the
	// step's routes are in place by then.
	var mu sync.Mutex
	var seen []string
	hk := newHooks(t)
	hk.onStep = func(weight int) {
		vs, err := mc.meshDyn.Resource(virtualServices).Namespace(ns).Get(context.Background(), svc, metav1.GetOptions{})
		got := fmt.Sprintf("step %d: ", weight)
		if err != nil {
			got += err.Error()
		} else {
			routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
			for _, r := range routes {
				if r, _ := r.(map[string]any); isWeighted(r) {
					for _, d := range routeDestinations(r) {
						got += fmt.Sprintf("%s=%d ", d.subset, d.weight)
					}
				}
			}
		}
		mu.Lock()
		seen = append(seen, strings.TrimSpace(got))
		mu.Unlock()
	}
	r, code, stderr := h.rollout(t, ns, "pp", "--set", "image.tag=84", "--steps", "25,100", "--interval", rolloutInterval,
		"--prometheus", m.prom.URL, "--analysis", hk.analysisFile(t, ""), "--drain-time", "0s")
	if code != 0 || r.Outcome != "promoted" {
		t.Fatalf("exit %d, outcome %q, want 0 promoted; stderr:\n%s", code, r.Outcome, stderr)
	}
	for _, want := range []string{"the workloads first, then the routes, in the mesh cluster", "the routes first, in the mesh cluster"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the rollout's progress lacks %q:\n%s", want, stderr)
		}
	}
	mu.Lock()
	if got := strings.Join(seen, "; "); got != "step 25: production=75 canary=25; step 100: production=0 canary=100" {
		t.Errorf("the mesh cluster's weights at each step: %s", got)
	}
	mu.Unlock()
	if got := mc.productionImage(t, ns); !strings.HasSuffix(got, ":84") {
		t.Errorf("production runs %s after the rollout, want 84", got)
	}
	mc.checkSides(t, "promoted", ns, map[string]int64{"productpage": 0}, map[string]map[string]int64{svc: {"production": 100, "canary": 0}})
	if st := meshStatusOf(t, h, ns, "pp"); st.Stage != "final" || !st.Mesh.InStep {
		t.Errorf("status after the rollout: stage %s, mesh %+v; want final, in step", st.Stage, *st.Mesh)
	}

	// The next version fails at 50%: both sides back to stable, the routes first.
	hk.onStep = func(weight int) {
		if weight >= 50 {
			m.Set(ns, "productpage-canary", promtest.Traffic{RPS: 20, ErrorRate: 0.2, LatencyMs: 40})
		}
	}
	r, code, stderr = h.rollout(t, ns, "pp", "--set", "image.tag=85", "--steps", "25,50,100", "--interval", rolloutInterval,
		"--prometheus", m.prom.URL, "--analysis", hk.analysisFile(t, ""))
	if code != 1 || r.Outcome != "rolled-back" || r.Stage != "stable" {
		t.Fatalf("exit %d, outcome %q at stage %q, want 1 rolled-back to stable; stderr:\n%s", code, r.Outcome, r.Stage, stderr)
	}
	if !strings.Contains(stderr, "stage stable: the routes first, in the mesh cluster") {
		t.Errorf("the rollback did not move the routes first:\n%s", stderr)
	}
	if got := mc.productionImage(t, ns); !strings.HasSuffix(got, ":84") {
		t.Errorf("production runs %s after the rollback, want 84", got)
	}
	mc.checkSides(t, "rolled back", ns, map[string]int64{"productpage": 0}, map[string]map[string]int64{svc: {"production": 100, "canary": 0}})
	if st := meshStatusOf(t, h, ns, "pp"); st.Stage != "stable" || !st.Mesh.InStep {
		t.Errorf("status after the rollback: stage %s, mesh %+v; want stable, in step", st.Stage, *st.Mesh)
	}
}
