package release

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	helmrelease "helm.sh/helm/v3/pkg/release"
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

// istioResource is the API resource of an Istio routing object of a manifest.
func istioResource(o canaried.Object) (schema.GroupVersionResource, bool) {
	resource, ok := istioResources[o.Kind]
	group, version, found := strings.Cut(o.APIVersion, "/")
	if !ok || !found || !strings.HasSuffix(group, "istio.io") {
		return schema.GroupVersionResource{}, false
	}
	return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}, true
}

// repairDrift re-applies the spec of every routing object of a revision's manifest
// whose live spec differs, and names what it repaired. It runs after the upgrade:
// an error leaves that revision deployed, and says so.
func (c *Client) repairDrift(ctx context.Context, rel *helmrelease.Release) ([]string, error) {
	m, err := canaried.Read([]byte(rel.Manifest), c.Namespace)
	if err != nil {
		return nil, err
	}
	_, dyn, err := c.clients()
	if err != nil {
		return nil, err
	}
	var repaired []string
	for _, o := range m.Objects {
		gvr, ok := istioResource(o)
		if !ok {
			continue
		}
		ns := m.NamespaceOf(o)
		client := dyn.Resource(gvr).Namespace(ns)
		live, err := client.Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // Helm creates what is missing
		}
		if err != nil {
			return repaired, repairError(rel, o, ns, gvr, "get", "read %s to check it for drift", err)
		}
		want, got := normalize(o.Fields["spec"]), normalize(live.Object["spec"])
		if reflect.DeepEqual(want, got) {
			continue
		}
		live.Object["spec"] = o.Fields["spec"]
		if _, err := client.Update(ctx, live, metav1.UpdateOptions{FieldManager: "helm-canary"}); err != nil {
			return repaired, repairError(rel, o, ns, gvr, "update", "update %s, edited outside the release, back to the spec the release says", err)
		}
		repaired = append(repaired, fmt.Sprintf("%s %s/%s", o.Kind, ns, o.Name))
	}
	return repaired, nil
}

// repairError says what a failed drift repair leaves: the new revision is deployed,
// the object is not what it says, and what to do about it.
func repairError(rel *helmrelease.Release, o canaried.Object, ns string, gvr schema.GroupVersionResource, verb, what string, err error) error {
	stage := "stable"
	if config, cerr := canaryConfig(rel.Config); cerr == nil && config.Stage != "" {
		stage = config.Stage
		if config.Draining {
			stage += ", draining"
		}
	}
	object := fmt.Sprintf("%s %s/%s", o.Kind, ns, o.Name)
	action := fmt.Sprintf(what, object)
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("revision %d of release %q is deployed (stage %s), but helm-canary may not %s: %w\n"+
			"Left to do: %s may still route as edited by hand, not as revision %d says (see `helm canary status %s`). "+
			"Grant %s on %s.%s in namespace %s (README, section Permissions), then run the same command again: it repairs the drift",
			rel.Version, rel.Name, stage, action, err, object, rel.Version, rel.Name, verb, gvr.Resource, gvr.Group, ns)
	}
	return fmt.Errorf("revision %d of release %q is deployed (stage %s), but helm-canary could not %s: %w; "+
		"run the same command again to repair it (see `helm canary status %s`)", rel.Version, rel.Name, stage, action, err, rel.Name)
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

// permissionHint adds, to an API error that says the user may not do something,
// where the permissions helm-canary needs are listed.
func permissionHint(err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%w (the permissions helm-canary needs are in its README, section Permissions)", err)
	}
	return err
}
