package renderer

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// servicesOf finds the Services that select a Deployment's pods, as rendered now or
// as production runs them.
func (r *release) servicesOf(dep *deployment) []*service {
	out := r.index.selecting(dep.ns, dep.labels)
	if pinned := templateLabels(r.pinned[dep.name]); pinned != nil {
		for _, svc := range r.index.selecting(dep.ns, pinned) {
			if !slices.Contains(out, svc) {
				out = append(out, svc)
			}
		}
	}
	return out
}

// checkExplicit verifies every --workload names a Deployment that can be canaried.
func (r *release) checkExplicit(parsed map[string]*deployment) error {
	for _, name := range r.opts.Workloads {
		dep := parsed[name]
		if dep == nil {
			return fmt.Errorf("workload %q: no Deployment of that name in the manifests (Deployments: %s); fix --workload", name, listOrNone(r.names))
		}
		if dep.hook {
			return fmt.Errorf("workload %q: Deployment %s is a Helm hook (%s), and hooks are not canaried; drop it from --workload", name, name, helmHookAnnotation)
		}
	}
	return nil
}

// resolveSharedHosts enforces one canaried Deployment per Service: a
// DestinationRule has one production and one canary subset. With named workloads a
// clash is an error; by default the Deployments sharing a Service are left alone.
func (r *release) resolveSharedHosts() error {
	perService := map[*service][]*workload{}
	for _, w := range r.workloads {
		for _, svc := range w.services {
			perService[svc] = append(perService[svc], w)
		}
	}
	drop := map[*workload]bool{}
	for _, svc := range r.services {
		ws := perService[svc]
		if len(ws) < 2 {
			continue
		}
		var names []string
		for _, w := range ws {
			names = append(names, w.name)
		}
		if r.explicit != nil {
			return fmt.Errorf("Service %s selects the pods of several canaried Deployments (%s); a Service routes to one canary at a time: pass only one of them to --workload",
				svc.name, strings.Join(names, ", "))
		}
		r.warnf("Service %s selects several Deployments (%s): none of them is canaried by default; name the one to canary with --workload", svc.name, strings.Join(names, ", "))
		for _, w := range ws {
			drop[w] = true
		}
	}
	kept := r.workloads[:0]
	for _, w := range r.workloads {
		if drop[w] {
			w.d.doc.out, w.d.doc.after = nil, nil // back to the bytes as rendered
			continue
		}
		kept = append(kept, w)
	}
	r.workloads = kept

	// A Service that selects a canaried Deployment and others too (bookinfo's
	// reviews with --workload reviews-v2): the routes must not cut the others off.
	selectedBy := map[*service][]*deployment{}
	for _, dep := range r.deployments {
		for _, svc := range r.index.selecting(dep.ns, dep.labels) {
			selectedBy[svc] = append(selectedBy[svc], dep)
		}
	}
	for _, w := range r.workloads {
		for _, svc := range w.services {
			others, err := r.othersSelectedBy(svc, w, selectedBy[svc])
			if err != nil {
				return err
			}
			if len(others) == 0 {
				continue
			}
			if w.others == nil {
				w.others = map[*service][]*deployment{}
			}
			w.others[svc] = others
			if !r.hasVirtualServiceFor(svc) {
				names := deploymentNames(others)
				return fmt.Errorf("Service %s selects the pods of Deployment %s and also of %s: a VirtualService sending %s to %s's production and canary subsets would cut %s off. "+
					"Give %s a VirtualService that routes to each Deployment by a DestinationRule subset of its own labels (as bookinfo's reviews does); helm-canary then splits only the routes that reach %s. Or give %s a Service of its own",
					svc.name, w.name, names, svc.name, w.name, names, svc.name, w.name, w.name)
			}
		}
	}
	// Reported after the cut-off check: a stage that cannot be rendered yet matters
	// less than a routing that never can be.
	for _, w := range r.workloads {
		if w.blocked != nil {
			return w.blocked
		}
	}
	return nil
}

// serviceIndex finds the Services that select a set of pod labels without trying
// every Service: each Service is filed under one of its selector's key=value pairs,
// which any pods it selects must carry.
type serviceIndex map[string][]*service

func newServiceIndex(services []*service) serviceIndex {
	idx := serviceIndex{}
	for _, svc := range services {
		if len(svc.selector) == 0 {
			continue
		}
		keys := make([]string, 0, len(svc.selector))
		for k := range svc.selector {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		pair := keys[0] + "=" + svc.selector[keys[0]]
		idx[pair] = append(idx[pair], svc)
	}
	return idx
}

func (idx serviceIndex) selecting(ns string, labels map[string]string) []*service {
	var out []*service
	for k, v := range labels {
		for _, svc := range idx[k+"="+v] {
			if sameNamespace(svc.ns, ns) && selects(svc.selector, labels) {
				out = append(out, svc)
			}
		}
	}
	// Map iteration order is random; keep the input order for stable output.
	sort.Slice(out, func(i, j int) bool { return out[i].doc.index < out[j].doc.index })
	return out
}

// othersSelectedBy lists the Deployments of the stream, other than the workload
// (and canaries an earlier render made), whose pods the Service selects: those
// parsed already (every Deployment, without named workloads) as the index found
// them, and with named workloads the unparsed ones whose text holds every value of
// the selector, parsed now (a few, for a few named workloads).
func (r *release) othersSelectedBy(svc *service, w *workload, parsed []*deployment) ([]*deployment, error) {
	own := func(d *document) bool {
		_, prior := r.priorOf[d]
		return d == w.d.doc || d.name == w.name+CanarySuffix || prior
	}
	var out []*deployment
	for _, dep := range parsed {
		if !own(dep.doc) {
			out = append(out, dep)
		}
	}
	if r.explicit == nil {
		return out, nil
	}
	var values [][]byte
	for _, v := range svc.selector {
		values = append(values, []byte(v))
	}
	for _, d := range r.deploymentDocs {
		if d.parsed || own(d) || !mayContainAll(d.body, values) {
			continue
		}
		n, err := d.parse()
		if err != nil {
			return nil, err
		}
		if n == nil || !strings.HasPrefix(n.GetApiVersion(), "apps/") {
			continue
		}
		meta := metaOf(n)
		labels := stringMapNode(lookup(n.YNode(), "spec", "template", "metadata", "labels"))
		if !meta.hook && sameNamespace(meta.ns, svc.ns) && selects(svc.selector, labels) {
			out = append(out, &deployment{doc: d, name: meta.name, ns: meta.ns, labels: labels,
				selector: stringMapNode(lookup(n.YNode(), "spec", "selector", "matchLabels"))})
		}
		// Passed through as rendered: drop the tree.
		d.node, d.parsed = nil, false
	}
	return out, nil
}

func mayContainAll(body []byte, values [][]byte) bool {
	if bytes.IndexByte(body, '\\') >= 0 {
		return true
	}
	for _, v := range values {
		if !bytes.Contains(body, v) {
			return false
		}
	}
	return true
}

func deploymentNames(deps []*deployment) string {
	var names []string
	for _, d := range deps {
		names = append(names, d.name)
	}
	return strings.Join(names, ", ")
}

func (r *release) hasVirtualServiceFor(svc *service) bool {
	for _, doc := range r.vservices {
		for _, h := range stringList(doc.node, "spec", "hosts") {
			if r.hostMatches(h, svc) {
				return true
			}
		}
	}
	return false
}

func (r *release) warnf(format string, args ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

// checkServices verifies that each Service routes to production and canary pods
// alike: the subsets pick pods by label, so the Service must select both (hazard 6),
// and a named targetPort must exist in both pod templates.
func (r *release) checkServices(w *workload, production, canary *yaml.Node) error {
	productionLabels := stringMapNode(lookup(production, "metadata", "labels"))
	for _, svc := range w.services {
		if !selects(svc.selector, w.d.labels) {
			return fmt.Errorf("Service %s selects the production pods of Deployment %s but not its canary pods (selector %s, new pod labels %s); keep the labels the Service selects the same across versions",
				svc.name, w.name, formatLabels(svc.selector), formatLabels(w.d.labels))
		}
		if !selects(svc.selector, productionLabels) {
			return fmt.Errorf("Service %s selects the canary pods of Deployment %s but not its production pods (selector %s, production pod labels %s); keep the labels the Service selects the same across versions",
				svc.name, w.name, formatLabels(svc.selector), formatLabels(productionLabels))
		}
		for _, port := range svc.namedPorts {
			for _, t := range []struct {
				role string
				tmpl *yaml.Node
			}{{"canary", canary}, {"production", production}} {
				if !hasContainerPort(t.tmpl, port) {
					return fmt.Errorf("Service %s targets port %q, which no container of Deployment %s's %s pods names; name the container port %q or use a port number",
						svc.name, port, w.name, t.role, port)
				}
			}
		}
	}
	return nil
}

func namedTargetPorts(spec *yaml.Node) []string {
	ports := field(spec, "ports")
	if ports == nil {
		return nil
	}
	var out []string
	for _, p := range ports.Content {
		if tp := field(p, "targetPort"); tp != nil && tp.Tag == yaml.NodeTagString {
			out = append(out, tp.Value)
		}
	}
	return out
}

func hasContainerPort(tmpl *yaml.Node, name string) bool {
	for _, list := range []string{"containers", "initContainers"} {
		containers := lookup(tmpl, "spec", list)
		if containers == nil {
			continue
		}
		for _, c := range containers.Content {
			ports := field(c, "ports")
			if ports == nil {
				continue
			}
			for _, p := range ports.Content {
				if n := field(p, "name"); n != nil && n.Value == name {
					return true
				}
			}
		}
	}
	return false
}

func stringList(n *yaml.RNode, path ...string) []string {
	l := lookup(nodeOf(n), path...)
	if l == nil || l.Kind != yaml.SequenceNode {
		return nil
	}
	var out []string
	for _, c := range l.Content {
		out = append(out, c.Value)
	}
	return out
}

func formatLabels(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
