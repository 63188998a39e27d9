package e2e

import (
	"fmt"
	"maps"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Reading the live objects back: what the API server stored is the result, whatever
// helm printed.

var (
	destinationRules = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}
	virtualServices  = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
)

type clientSet struct {
	kube    kubernetes.Interface
	dynamic dynamic.Interface
}

var liveClients = sync.OnceValues(func() (clientSet, error) {
	config := cluster.RESTConfig()
	// One client serves every parallel test: no client-side throttling.
	config.QPS = -1
	kube, err := kubernetes.NewForConfig(config)
	if err != nil {
		return clientSet{}, err
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return clientSet{}, err
	}
	return clientSet{kube: kube, dynamic: dyn}, nil
})

func clients(t *testing.T) clientSet {
	t.Helper()
	requireCluster(t)
	c, err := liveClients()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// liveDeployment is what the tests check of a Deployment.
type liveDeployment struct {
	Replicas  int32             // spec.replicas (1 when unset, as the API defaults it)
	Images    map[string]string // container name -> image
	PodLabels map[string]string // spec.template.metadata.labels
	Selector  map[string]string // spec.selector.matchLabels
}

func getDeployment(t *testing.T, namespace, name string) liveDeployment {
	t.Helper()
	live, _ := getDeploymentVersion(t, namespace, name)
	return live
}

// getDeploymentVersion is getDeployment and a version that changes when anyone but
// the controllers writes the object: its generation (bumped by every spec change),
// labels and annotations but the controller's revision. Not the resourceVersion:
// the Deployment controller writes status whenever pods change.
func getDeploymentVersion(t *testing.T, namespace, name string) (liveDeployment, string) {
	t.Helper()
	d, err := clients(t).kube.AppsV1().Deployments(namespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment %s/%s get: %v", namespace, name, err)
	}
	live := liveDeployment{
		Replicas:  1,
		Images:    map[string]string{},
		PodLabels: maps.Clone(d.Spec.Template.Labels),
	}
	if d.Spec.Replicas != nil {
		live.Replicas = *d.Spec.Replicas
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		live.Images[c.Name] = c.Image
	}
	if d.Spec.Selector != nil {
		live.Selector = maps.Clone(d.Spec.Selector.MatchLabels)
	}
	annotations := maps.Clone(d.Annotations)
	delete(annotations, "deployment.kubernetes.io/revision") // the controller's
	return live, fmt.Sprintf("generation %d, labels %v, annotations %v", d.Generation, d.Labels, annotations)
}

func getIstio(t *testing.T, resource schema.GroupVersionResource, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	obj, err := clients(t).dynamic.Resource(resource).Namespace(namespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("%s %s/%s get: %v", resource.Resource, namespace, name, err)
	}
	return obj
}

// getSubsets returns a DestinationRule's subsets: name -> labels.
func getSubsets(t *testing.T, namespace, name string) map[string]map[string]string {
	t.Helper()
	obj := getIstio(t, destinationRules, namespace, name)
	list, _, err := unstructured.NestedSlice(obj.Object, "spec", "subsets")
	if err != nil {
		t.Fatalf("DestinationRule %s/%s: spec.subsets: %v", namespace, name, err)
	}
	subsets := map[string]map[string]string{}
	for _, s := range list {
		subset, _ := s.(map[string]any)
		subsetName, _, _ := unstructured.NestedString(subset, "name")
		labels, _, err := unstructured.NestedStringMap(subset, "labels")
		if err != nil {
			t.Fatalf("DestinationRule %s/%s: subset %q labels: %v", namespace, name, subsetName, err)
		}
		subsets[subsetName] = labels
	}
	return subsets
}

// getRouteWeights returns the weights of a VirtualService's default HTTP route (the
// last http entry without a match): destination subset -> weight, "" for a
// destination without a subset. As in Istio, a lone destination without a weight
// gets 100 and one of several gets 0.
func getRouteWeights(t *testing.T, namespace, name string) map[string]int64 {
	t.Helper()
	obj := getIstio(t, virtualServices, namespace, name)
	httpRoutes, _, err := unstructured.NestedSlice(obj.Object, "spec", "http")
	if err != nil {
		t.Fatalf("VirtualService %s/%s: spec.http: %v", namespace, name, err)
	}
	var route []any
	found := false
	for _, r := range httpRoutes {
		entry, _ := r.(map[string]any)
		if match, _, _ := unstructured.NestedSlice(entry, "match"); len(match) > 0 {
			continue
		}
		route, _, _ = unstructured.NestedSlice(entry, "route")
		found = true
	}
	if !found {
		t.Fatalf("VirtualService %s/%s: no default HTTP route (one without match) in %v", namespace, name, httpRoutes)
	}
	weights := map[string]int64{}
	for _, d := range route {
		dest, _ := d.(map[string]any)
		subset, _, _ := unstructured.NestedString(dest, "destination", "subset")
		weight, ok, err := unstructured.NestedFieldNoCopy(dest, "weight")
		switch {
		case err != nil:
			t.Fatalf("VirtualService %s/%s: weight: %v", namespace, name, err)
		case !ok && len(route) == 1:
			weights[subset] = 100
		case !ok:
			weights[subset] = 0
		default:
			w, ok := weight.(int64)
			if !ok {
				t.Fatalf("VirtualService %s/%s: weight %v is a %T, want an integer", namespace, name, weight, weight)
			}
			weights[subset] = w
		}
	}
	return weights
}
