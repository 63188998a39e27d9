package release

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/helm-canary/helm-canary/canaried"
)

// asLive is a manifest's objects as they are live, for --dry-run to compare with:
// a hand edit (weights set by hand, a rule changed) is part of what the command
// changes. Each live object is cut to the fields the manifest sets, so that what
// the API server adds (status, defaults, bookkeeping) shows as no change; an Istio
// object's spec is kept whole, since nothing defaults it and a field added by hand
// is drift. An object missing from the cluster is left out (the command creates
// it); one that cannot be read is compared as stored, with a warning.
func (c *Client) asLive(ctx context.Context, manifest string) string {
	m, err := canaried.Read([]byte(manifest), c.Namespace)
	if err != nil {
		return manifest
	}
	_, dyn, err := c.clients()
	if err != nil {
		fmt.Fprintf(c.Log, "Warning: comparing with the stored manifest, not the live objects: %v\n", err)
		return manifest
	}
	mapper, err := c.Settings.RESTClientGetter().ToRESTMapper()
	if err != nil {
		fmt.Fprintf(c.Log, "Warning: comparing with the stored manifest, not the live objects: %v\n", err)
		return manifest
	}
	var b strings.Builder
	for _, o := range m.Objects {
		fields := o.Fields
		live, err := readLive(ctx, dyn, mapper, m, o)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			fmt.Fprintf(c.Log, "Warning: %s %s/%s compared as stored, not as live: %v\n", o.Kind, m.NamespaceOf(o), o.Name, permissionHint(err))
		default:
			fields = project(live, o.Fields).(map[string]any)
			if o.Kind == "Secret" {
				liveStringData(fields, live, o.Fields)
			}
			if _, routing := istioResource(o); routing && live["spec"] != nil {
				fields["spec"] = live["spec"]
			}
			// The manifest's namespace as written: the diff keys objects by it.
			if o.Namespace == "" {
				if md, ok := fields["metadata"].(map[string]any); ok {
					delete(md, "namespace")
				}
			}
		}
		out, err := yaml.Marshal(fields)
		if err != nil {
			return manifest
		}
		b.WriteString("---\n")
		b.Write(out)
	}
	return b.String()
}

// readLive gets the live object of a manifest's object.
func readLive(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, m *canaried.Manifest, o canaried.Object) (map[string]any, error) {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return nil, err
	}
	mapping, err := mapper.RESTMapping(gv.WithKind(o.Kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, err
	}
	var client dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		client = dyn.Resource(mapping.Resource).Namespace(m.NamespaceOf(o))
	}
	live, err := client.Get(ctx, o.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return live.Object, nil
}

// liveStringData reads a Secret's stringData back from its live data: the API
// server folds stringData into data and keeps none, so without this every live
// Secret would seem to gain the manifest's stringData at each dry run.
func liveStringData(fields, live, manifest map[string]any) {
	sd, ok := manifest["stringData"].(map[string]any)
	if !ok {
		return
	}
	data, _ := live["data"].(map[string]any)
	out := map[string]any{}
	for k := range sd {
		if v, ok := data[k].(string); ok {
			if b, err := base64.StdEncoding.DecodeString(v); err == nil {
				out[k] = string(b)
			}
		}
	}
	fields["stringData"] = out
}

// project cuts a live value to the shape of the manifest's: map keys the manifest
// has, list items the manifest has (items beyond them kept whole: added by hand).
func project(live, shape any) any {
	switch s := shape.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return live
		}
		out := map[string]any{}
		for k, v := range s {
			if lv, ok := l[k]; ok {
				out[k] = project(lv, v)
			}
		}
		return out
	case []any:
		l, ok := live.([]any)
		if !ok {
			return live
		}
		out := make([]any, len(l))
		for i, lv := range l {
			if i < len(s) {
				out[i] = project(lv, s[i])
			} else {
				out[i] = lv
			}
		}
		return out
	}
	return live
}
