package libchart

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

const (
	trackLabel = "helm-canary.io/track"
	seedRepo   = "myacrepo.azurecr.io/bookinfo-canary/productpage"
)

// seed001 is the seed's seven `helm upgrade` commands and its rollback, --set for
// --set as the article prints them (line breaks removed). Stage 7's canary repository
// is spelt "bookinfocanary" in the article; it is kept: the canary has 0 replicas
// there, and the chart must take the values as written.
var seed001 = []struct {
	step       string
	set        string
	want       state
	canaryRepo string
}{
	{"stage 1: stable, 83",
		"productionDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,productionDeployment.image.tag=83,productionDeployment.weight=100,productionDeployment.replicaCount=2,canaryDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,canaryDeployment.image.tag=83,canaryDeployment.replicaCount=0,canaryDeployment.weight=0",
		atStable, seedRepo},
	{"stage 2: 10% to 84",
		"productionDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,productionDeployment.image.tag=83,productionDeployment.weight=90,productionDeployment.replicaCount=2,canaryDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,canaryDeployment.image.tag=84,canaryDeployment.replicaCount=2,canaryDeployment.weight=10",
		at10, seedRepo},
	{"stage 3: 90% to 84",
		"productionDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,productionDeployment.image.tag=83,productionDeployment.weight=10,productionDeployment.replicaCount=2,canaryDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,canaryDeployment.image.tag=84,canaryDeployment.replicaCount=2,canaryDeployment.weight=90",
		at90, seedRepo},
	{"stage 4: 100% to 84",
		"productionDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,productionDeployment.image.tag=83,productionDeployment.weight=0,productionDeployment.replicaCount=2,canaryDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,canaryDeployment.image.tag=84,canaryDeployment.replicaCount=2,canaryDeployment.weight=100",
		at100, seedRepo},
	{"stage 5: production rolls to 84",
		"productionDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,productionDeployment.image.tag=84,productionDeployment.weight=0,productionDeployment.replicaCount=2,canaryDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,canaryDeployment.image.tag=84,canaryDeployment.replicaCount=2,canaryDeployment.weight=100",
		atSwap, seedRepo},
	{"stage 6: traffic back to production",
		"productionDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,productionDeployment.image.tag=84,productionDeployment.weight=100,productionDeployment.replicaCount=2,canaryDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,canaryDeployment.image.tag=84,canaryDeployment.replicaCount=2,canaryDeployment.weight=0",
		atDraining, seedRepo},
	{"stage 7: new stable, 84",
		"productionDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,productionDeployment.image.tag=84,productionDeployment.weight=100,productionDeployment.replicaCount=2,canaryDeployment.image.repository=myacrepo.azurecr.io/bookinfocanary/productpage,canaryDeployment.image.tag=84,canaryDeployment.replicaCount=0,canaryDeployment.weight=0",
		atFinal, "myacrepo.azurecr.io/bookinfocanary/productpage"},
	{"rollback: 83",
		"productionDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,productionDeployment.image.tag=83,productionDeployment.weight=100,productionDeployment.replicaCount=2,canaryDeployment.image.repository=myacrepo.azurecr.io/bookinfo-canary/productpage,canaryDeployment.image.tag=83,canaryDeployment.replicaCount=0,canaryDeployment.weight=0",
		atStable, seedRepo},
}

// TestSeed001Replay runs seed 001's commands against the local API server, with
// only the chart path and namespace changed, without --wait and with
// canaryLib.enabled=true appended, and checks the live objects after each.
func TestSeed001Replay(t *testing.T) {
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			helm := helmCLI(t, major)
			ns := newNamespace(t)
			chart, err := filepath.Abs(exampleChart)
			if err != nil {
				t.Fatal(err)
			}
			for i, step := range seed001 {
				helm.mustRun(t, "upgrade", "--install", "--namespace", ns,
					"--values", filepath.Join(chart, "values.yaml"),
					"--set", step.set+",canaryLib.enabled=true",
					"productpage", chart)
				checkLive(t, step.step, ns, step.want, seedRepo, step.canaryRepo)
				var history []struct {
					Revision int    `json:"revision"`
					Status   string `json:"status"`
				}
				out := helm.mustRun(t, "history", "productpage", "-n", ns, "-o", "json", "--max", "1")
				if err := json.Unmarshal([]byte(out), &history); err != nil || len(history) != 1 ||
					history[0].Revision != i+1 || history[0].Status != "deployed" {
					t.Errorf("%s: helm history says %s, want revision %d deployed (%v)", step.step, out, i+1, err)
				}
			}
		})
	}
}

// TestSwitchModes: a release moves between the plain chart (with and without the
// post-renderer) and library mode without an upgrade failing (the production
// Deployment's selector never changes), and the two paths leave the same objects.
func TestSwitchModes(t *testing.T) {
	helm := helmCLI(t, 3)
	ns := newNamespace(t)
	chart, err := filepath.Abs(exampleChart)
	if err != nil {
		t.Fatal(err)
	}
	upgrade := func(args ...string) {
		t.Helper()
		helm.mustRun(t, append([]string{"upgrade", "--install", "pp", chart, "--namespace", ns}, args...)...)
	}

	// An existing release of the plain chart, no canary at all.
	upgrade("--set", "image.tag=83")
	// Library mode while production's running pods lack the track label: by host.
	upgrade("--set", "canaryLib.enabled=true,canaryLib.adopting=true,image.tag=83")
	checkLive(t, "library mode, adopting", ns, atAdopting, productpageImage, productpageImage)
	upgrade("--set", atStable.seedSets(productpageImage, productpageImage))
	checkLive(t, "library mode, stable", ns, atStable, productpageImage, productpageImage)
	upgrade("--set", at10.seedSets(productpageImage, productpageImage))
	checkLive(t, "library mode, 10", ns, at10, productpageImage, productpageImage)
	library := parseObjects(t, helm.mustRun(t, "get", "manifest", "pp", "-n", ns))

	// Back to the plain chart, the post-renderer pinning production to the deployed
	// (library-made) manifest: the same stage gives the same objects.
	upgrade("--set", "image.tag=84", "--post-renderer", canaryBinary,
		"--post-renderer-args", "render", "--post-renderer-args", "--stage=10",
		"--post-renderer-args", "--release=pp", "--post-renderer-args", "--namespace="+ns)
	checkLive(t, "plain mode + post-renderer, 10", ns, at10, productpageImage, productpageImage)
	rendered := parseObjects(t, helm.mustRun(t, "get", "manifest", "pp", "-n", ns))
	compareSets(t, "the release at stage 10", library, rendered, "library mode", "plain mode + helm-canary render")

	// And on to library mode again.
	upgrade("--set", at90.seedSets(productpageImage, productpageImage))
	checkLive(t, "library mode, 90", ns, at90, productpageImage, productpageImage)
}

var namespaces atomic.Int32

func newNamespace(t *testing.T) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	name = fmt.Sprintf("libchart-%.40s-%d", name, namespaces.Add(1))
	if err := cluster.CreateNamespace(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

var (
	deployments      = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	destinationRules = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}
	virtualServices  = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
)

var liveClient = sync.OnceValues(func() (dynamic.Interface, error) {
	return dynamic.NewForConfig(cluster.RESTConfig())
})

func getLive(t *testing.T, gvr schema.GroupVersionResource, ns, name string) map[string]any {
	t.Helper()
	client, err := liveClient()
	if err != nil {
		t.Fatal(err)
	}
	obj, err := client.Resource(gvr).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("%s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return obj.Object
}

// checkLive compares what the API server holds with the state: both Deployments
// (selector, track label, image, replicas), the DestinationRule's subsets and the
// VirtualService's weights.
func checkLive(t *testing.T, step, ns string, want state, prodRepo, canaryRepo string) {
	t.Helper()
	selector := map[string]string{"app": "productpage"}
	for _, d := range []struct {
		name, track, image string
		replicas           int
	}{
		{"productpage", "production", prodRepo + ":" + want.prodTag, want.prodReplicas},
		{"productpage-canary", "canary", canaryRepo + ":" + want.canaryTag, want.canaryReplicas},
	} {
		obj := getLive(t, deployments, ns, d.name)
		wantSelector := maps.Clone(selector)
		if d.track == "canary" {
			wantSelector[trackLabel] = "canary"
		}
		gotSelector, _, _ := unstructured.NestedStringMap(obj, "spec", "selector", "matchLabels")
		if !reflect.DeepEqual(gotSelector, wantSelector) {
			t.Errorf("%s: Deployment %s selector %v, want %v", step, d.name, gotSelector, wantSelector)
		}
		podLabels, _, _ := unstructured.NestedStringMap(obj, "spec", "template", "metadata", "labels")
		if podLabels[trackLabel] != d.track || podLabels["app"] != "productpage" {
			t.Errorf("%s: Deployment %s pod labels %v, want app=productpage and %s=%s", step, d.name, podLabels, trackLabel, d.track)
		}
		containers, _, _ := unstructured.NestedSlice(obj, "spec", "template", "spec", "containers")
		var images []string
		for _, c := range containers {
			images = append(images, fmt.Sprint(c.(map[string]any)["image"]))
		}
		if len(images) != 1 || images[0] != d.image {
			t.Errorf("%s: Deployment %s images %v, want [%s]", step, d.name, images, d.image)
		}
		replicas, _, _ := unstructured.NestedInt64(obj, "spec", "replicas")
		if int(replicas) != d.replicas {
			t.Errorf("%s: Deployment %s replicas %d, want %d", step, d.name, replicas, d.replicas)
		}
	}

	dr := getLive(t, destinationRules, ns, "product-page-svc")
	if host, _, _ := unstructured.NestedString(dr, "spec", "host"); host != "product-page-svc" {
		t.Errorf("%s: DestinationRule host %q, want product-page-svc", step, host)
	}
	subsets, _, _ := unstructured.NestedSlice(dr, "spec", "subsets")
	gotSubsets := map[string]map[string]string{}
	for _, s := range subsets {
		m := s.(map[string]any)
		labels, _, _ := unstructured.NestedStringMap(m, "labels")
		gotSubsets[fmt.Sprint(m["name"])] = labels
	}
	wantSubsets := map[string]map[string]string{
		"production": {"app": "productpage", trackLabel: "production"},
		"canary":     {"app": "productpage", trackLabel: "canary"},
	}
	if !reflect.DeepEqual(gotSubsets, wantSubsets) {
		t.Errorf("%s: DestinationRule subsets %v, want %v", step, gotSubsets, wantSubsets)
	}

	vs := getLive(t, virtualServices, ns, "product-page-svc")
	hosts, _, _ := unstructured.NestedStringSlice(vs, "spec", "hosts")
	if !reflect.DeepEqual(hosts, []string{"product-page-svc"}) {
		t.Errorf("%s: VirtualService hosts %v, want [product-page-svc]", step, hosts)
	}
	http, _, _ := unstructured.NestedSlice(vs, "spec", "http")
	if len(http) != 1 {
		t.Fatalf("%s: VirtualService has %d http routes, want 1: %v", step, len(http), http)
	}
	route, _, _ := unstructured.NestedSlice(http[0].(map[string]any), "route")
	got := map[string]any{}
	for _, d := range route {
		m := d.(map[string]any)
		subset, _, _ := unstructured.NestedString(m, "destination", "subset")
		if host, _, _ := unstructured.NestedString(m, "destination", "host"); host != "product-page-svc" {
			t.Errorf("%s: VirtualService routes to host %q, want product-page-svc", step, host)
		}
		got[subset] = m["weight"]
	}
	wantWeights := map[string]any{"production": int64(want.prodWeight), "canary": int64(want.canaryWeight)}
	if want.adopting {
		wantWeights = map[string]any{"": nil} // the bare host, all pods
	}
	if !reflect.DeepEqual(got, wantWeights) {
		t.Errorf("%s: VirtualService route (subset: weight) %v, want %v", step, got, wantWeights)
	}
}
