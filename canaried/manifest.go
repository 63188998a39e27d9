package canaried

import (
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/renderer"
)

// Object is one object of a manifest.
type Object struct {
	Kind, Name, Namespace, APIVersion string
	// Fields is the object as JSON decodes it (numbers are float64), the shape a
	// live object read with the dynamic client has too.
	Fields map[string]any
	// Node is the same object as YAML, for readers that keep its order and styles.
	Node *yaml.RNode
}

// Manifest is a rendered manifest, object by object, in its order.
type Manifest struct {
	Objects []Object
	// Namespace is where the release lives, for objects that name none ("" when
	// unknown: then only a Service's short name is taken for it, as the renderer
	// does).
	Namespace string
	// Domain is the cluster's DNS domain ("" for cluster.local): the one the
	// renderer recorded on the canary Deployments (renderer.AnnotationClusterDomain),
	// which a caller that knows the release's canary.clusterDomain may set instead.
	Domain string
}

// Read parses a manifest (what Helm stores with a release, or the renderer's
// output). namespace is the release's, or "" when unknown.
func Read(manifest []byte, namespace string) (*Manifest, error) {
	nodes, err := (&kio.ByteReader{Reader: strings.NewReader(string(manifest)), OmitReaderAnnotations: true}).Read()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	m := &Manifest{Namespace: namespace}
	for _, n := range nodes {
		js, err := n.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", n.GetKind(), n.GetName(), err)
		}
		var fields map[string]any
		if err := json.Unmarshal(js, &fields); err != nil {
			return nil, fmt.Errorf("%s %s: %w", n.GetKind(), n.GetName(), err)
		}
		m.Objects = append(m.Objects, Object{Kind: n.GetKind(), Name: n.GetName(), Namespace: n.GetNamespace(),
			APIVersion: n.GetApiVersion(), Fields: fields, Node: n})
		if d := n.GetAnnotations()[renderer.AnnotationClusterDomain]; d != "" && n.GetKind() == "Deployment" && m.Domain == "" {
			m.Domain = d
		}
	}
	return m, nil
}

// Of lists the objects of one kind, in manifest order.
func (m *Manifest) Of(kind string) []Object {
	var out []Object
	for _, o := range m.Objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// Get is the last object of a kind and name (the renderer, too, reads the last one
// of a name: that is how a rollback pins production), or nil.
func (m *Manifest) Get(kind, name string) *Object {
	for i := len(m.Objects) - 1; i >= 0; i-- {
		if o := m.Objects[i]; o.Kind == kind && o.Name == name {
			return &m.Objects[i]
		}
	}
	return nil
}

// NamespaceOf is where an object of the manifest lives: its own namespace, or the
// release's.
func (m *Manifest) NamespaceOf(o Object) string {
	if o.Namespace != "" {
		return o.Namespace
	}
	return m.Namespace
}

// Dig walks nested maps of decoded JSON or YAML; nil when a step is missing.
func Dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int64:
		return int(n), true
	case float64:
		return int(n), true
	case int:
		return n, true
	case int32:
		return int(n), true
	}
	return 0, false
}
