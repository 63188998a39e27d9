package renderer

import (
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// VersionLabels are the pod labels Istio and Kiali read a workload's version from:
// Istio's canonical revision (destination_canonical_revision, in this order:
// service.istio.io/canonical-revision, app.kubernetes.io/version, version), its
// destination_version / source_version (version, else app.kubernetes.io/version),
// and Kiali's versioned app graph (version unless configured otherwise). The
// canary's pods get a value of their own in each of these that no selector reads,
// so that dashboards tell the canary from production by version as well as by
// workload name.
var VersionLabels = []string{"version", "app.kubernetes.io/version", "service.istio.io/canonical-revision"}

// DefaultVersionLabel is the label the canary's pods get, with the value
// TrackCanary, when the chart's pods carry none of VersionLabels.
const DefaultVersionLabel = "version"

// canaryVersionsEnabled lets tests compare a render with and without the canary's
// version labels.
var canaryVersionsEnabled = true

// maxLabelValue is Kubernetes' limit on a label value.
const maxLabelValue = 63

// canaryVersion is the canary's value of a version label whose rendered value is v:
// v-canary ("canary" for ""). It depends on nothing but the rendered template, so it
// stays the same at every stage and the canary's pods restart only when the version
// does. A value that is the canary's already (a stream rendered before) is kept.
// ok is false when the suffix would make the value longer than a label may be.
func canaryVersion(v string) (string, bool) {
	switch {
	case v == "":
		return TrackCanary, true
	case v == TrackCanary || strings.HasSuffix(v, CanarySuffix):
		return v, true
	case len(v)+len(CanarySuffix) > maxLabelValue:
		return "", false
	}
	return v + CanarySuffix, true
}

// productionVersions undoes canaryVersions on a pod template a canary had (a stream
// rendered before, at swap or final): production's pods carry the chart's own
// version labels. It edits tmpl, which must be the caller's copy, and reports
// whether it changed anything.
func (r *release) productionVersions(tmpl *yaml.Node, selector map[string]string) bool {
	labels := lookup(tmpl, "metadata", "labels")
	values := stringMapNode(labels)
	present := 0
	for _, key := range VersionLabels {
		if _, ok := values[key]; ok {
			present++
		}
	}
	changed := false
	for _, key := range VersionLabels {
		v, ok := values[key]
		if !ok || key == r.track {
			continue
		}
		if _, inSelector := selector[key]; inSelector {
			continue
		}
		switch {
		case v == TrackCanary && key == DefaultVersionLabel && present == 1:
			deleteField(labels, key) // the label render added
		case v == TrackCanary:
			setField(labels, key, stringNode(""))
		case strings.HasSuffix(v, CanarySuffix):
			setField(labels, key, stringNode(strings.TrimSuffix(v, CanarySuffix)))
		default:
			continue
		}
		changed = true
	}
	return changed
}

// canaryVersions decides the version labels of the canary's pods (key -> value):
// for each of VersionLabels the rendered template carries, its canaryVersion,
// unless a selector reads that label (see versionLabelFree); DefaultVersionLabel
// when it carries none. The production Deployment is never changed.
func (r *release) canaryVersions(w *workload, d *yaml.RNode) map[string]string {
	if !canaryVersionsEnabled || w.KeepVersionLabels {
		return nil
	}
	canary := w.d.labels
	out := map[string]string{}
	any := false
	for _, key := range VersionLabels {
		v, ok := canary[key]
		if !ok {
			continue
		}
		any = true
		if !r.versionLabelFree(w, d, key) {
			continue
		}
		if to, ok := canaryVersion(v); ok && to != v {
			out[key] = to
		}
	}
	if !any && r.versionLabelFree(w, d, DefaultVersionLabel) {
		out[DefaultVersionLabel] = TrackCanary
	}
	return out
}

// versionLabelFree reports whether the canary's pods may carry their own value of
// the label key: no selector that picks the workload's pods reads it. A
// Deployment's selector is immutable and must match its pods (hazard 1); a Service
// that selects by it would drop the canary's pods from its endpoints (hazard 6);
// a DestinationRule subset, a PodDisruptionBudget, a NetworkPolicy or an Istio
// policy that selects by it would stop applying to them.
func (r *release) versionLabelFree(w *workload, d *yaml.RNode, key string) bool {
	if key == r.track {
		return false
	}
	if _, ok := w.d.selector[key]; ok {
		return false
	}
	if readsKey(lookup(d.YNode(), "spec", "selector"), key, nil) {
		return false // matchExpressions
	}
	sides := []map[string]string{w.productionLabels, w.d.labels}
	for _, side := range sides {
		for _, svc := range r.index.selecting(w.d.ns, side) {
			if _, ok := svc.selector[key]; ok {
				return false
			}
		}
	}
	for _, n := range r.podSelectors() {
		if !sameNamespace(n.GetNamespace(), w.d.ns) {
			continue
		}
		if spec := lookup(n.YNode(), "spec"); readsKey(spec, key, sides) {
			return false
		}
	}
	return true
}

// podSelectors are the stream's documents of the podSelecting kinds, parsed once
// (a release of thousands of workloads checks them for each).
func (r *release) podSelectors() []*yaml.RNode {
	if r.selectors != nil {
		return *r.selectors
	}
	var out []*yaml.RNode
	for _, doc := range r.docs {
		if !podSelecting[doc.kind] || doc.generated {
			continue
		}
		if n, err := doc.parse(); err == nil && n != nil {
			out = append(out, n)
		}
	}
	r.selectors = &out
	return out
}

// podSelecting are the kinds besides Deployments and Services that pick pods by
// their labels.
var podSelecting = map[string]bool{
	"DestinationRule": true, "PodDisruptionBudget": true, "NetworkPolicy": true,
	"AuthorizationPolicy": true, "PeerAuthentication": true, "RequestAuthentication": true,
	"Sidecar": true, "Telemetry": true, "EnvoyFilter": true, "WasmPlugin": true, "PodMonitor": true,
}

// readsKey reports whether a selector somewhere under n reads the label key for
// pods with one of the label sets sides (any pods when sides is nil): a label map
// (matchLabels, selector, labels of a subset or workloadSelector) that has the key
// and selects one of them, or a matchExpressions entry on the key.
func readsKey(n *yaml.Node, key string, sides []map[string]string) bool {
	if n == nil {
		return false
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, el := range n.Content {
			if readsKey(el, key, sides) {
				return true
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			switch k {
			case "matchLabels", "selector", "labels":
				if m := stringMapNode(v); m != nil {
					if _, ok := m[key]; ok && (sides == nil || selectsAny(m, sides)) {
						return true
					}
				}
			case "matchExpressions":
				if v.Kind == yaml.SequenceNode {
					for _, e := range v.Content {
						if k := field(e, "key"); k != nil && k.Value == key {
							return true
						}
					}
				}
			}
			if readsKey(v, key, sides) {
				return true
			}
		}
	}
	return false
}
