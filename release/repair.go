package release

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/helm-canary/helm-canary/canaried"
)

// istioResources are the custom resources helm-canary routes with. Helm 3 updates
// custom resources with a two-way patch between the old and the new manifest and
// never looks at the live object, so a hand edit (weights set by hand) survives an
// upgrade that does not change that object. repairDrift puts them back.
var istioResources = map[string]string{
	"VirtualService": "virtualservices", "DestinationRule": "destinationrules", "Gateway": "gateways",
	"EnvoyFilter": "envoyfilters", "WasmPlugin": "wasmplugins",
}

// repairDrift re-applies the spec of every routing object of a manifest whose live
// spec differs, and names what it repaired.
func (c *Client) repairDrift(ctx context.Context, manifest string) ([]string, error) {
	m, err := canaried.Read([]byte(manifest), c.Namespace)
	if err != nil {
		return nil, err
	}
	_, dyn, err := c.clients()
	if err != nil {
		return nil, err
	}
	var repaired []string
	for _, o := range m.Objects {
		resource, ok := istioResources[o.Kind]
		group, version, found := strings.Cut(o.APIVersion, "/")
		if !ok || !found || !strings.HasSuffix(group, "istio.io") {
			continue
		}
		ns := m.NamespaceOf(o)
		client := dyn.Resource(schema.GroupVersionResource{Group: group, Version: version, Resource: resource}).Namespace(ns)
		live, err := client.Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // Helm creates what is missing
		}
		if err != nil {
			return repaired, fmt.Errorf("%s %s/%s: %w", o.Kind, ns, o.Name, err)
		}
		want, got := normalize(o.Fields["spec"]), normalize(live.Object["spec"])
		if reflect.DeepEqual(want, got) {
			continue
		}
		live.Object["spec"] = o.Fields["spec"]
		if _, err := client.Update(ctx, live, metav1.UpdateOptions{FieldManager: "helm-canary"}); err != nil {
			return repaired, fmt.Errorf("%s %s/%s: putting back the release's spec: %w", o.Kind, ns, o.Name, err)
		}
		repaired = append(repaired, fmt.Sprintf("%s %s/%s", o.Kind, ns, o.Name))
	}
	return repaired, nil
}

// normalize makes numbers compare equal whatever their Go type (JSON's float64,
// the API's int64).
func normalize(v any) any {
	js, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(js, &out)
	return out
}
