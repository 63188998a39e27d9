package renderer

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// selectWorkloads decides which Deployments to canary and finds their Services.
func (r *release) selectWorkloads() error {
	byName := map[string]*deployment{}
	var names []string
	for _, dep := range r.deployments {
		if _, dup := byName[dep.name]; !dup {
			names = append(names, dep.name)
		}
		byName[dep.name] = dep
	}
	index := newServiceIndex(r.services)
	servicesOf := func(dep *deployment) []*service {
		out := index.selecting(dep.ns, dep.labels)
		if pinned := templateLabels(r.pinned[dep.name]); pinned != nil {
			for _, svc := range index.selecting(dep.ns, pinned) {
				if !slices.Contains(out, svc) {
					out = append(out, svc)
				}
			}
		}
		return out
	}

	explicit := len(r.opts.Workloads) > 0
	var chosen []*deployment
	if explicit {
		seen := map[string]bool{}
		for _, name := range r.opts.Workloads {
			if seen[name] {
				continue
			}
			seen[name] = true
			dep := byName[name]
			if dep == nil {
				return fmt.Errorf("workload %q: no Deployment of that name in the manifests (Deployments: %s); fix --workload", name, listOrNone(names))
			}
			if dep.hook {
				return fmt.Errorf("workload %q: Deployment %s is a Helm hook (%s), and hooks are not canaried; drop it from --workload", name, name, helmHookAnnotation)
			}
			if dep.template == nil {
				return fmt.Errorf("Deployment %s has no spec.template; fix its template", name)
			}
			chosen = append(chosen, dep)
		}
	} else {
		for _, dep := range r.deployments {
			if dep.hook || dep.template == nil || strings.HasSuffix(dep.name, canarySuffix) && byName[strings.TrimSuffix(dep.name, canarySuffix)] != nil {
				continue
			}
			chosen = append(chosen, dep)
		}
	}

	for _, dep := range chosen {
		svcs := servicesOf(dep)
		if len(svcs) == 0 {
			if explicit {
				return fmt.Errorf("Deployment %s: no Service in the manifests selects its pods (pod labels %s); canary traffic is routed through a Service: add one that selects these labels, or drop --workload %s",
					dep.name, formatLabels(dep.labels), dep.name)
			}
			continue // a Deployment nothing routes to is left alone
		}
		w := &workload{d: dep, name: dep.name, services: svcs, pinned: r.pinned[dep.name]}
		w.labeled = w.pinned != nil && templateLabels(w.pinned)[r.track] == TrackProduction
		r.workloads = append(r.workloads, w)
	}

	// One Service can route to one canaried Deployment: its DestinationRule has one
	// production and one canary subset.
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
		var wn []string
		for _, w := range ws {
			wn = append(wn, w.name)
		}
		if explicit {
			return fmt.Errorf("Service %s selects the pods of several canaried Deployments (%s); a Service routes to one canary at a time: pass only one of them to --workload",
				svc.name, strings.Join(wn, ", "))
		}
		r.warnf("Service %s selects several Deployments (%s): none of them is canaried by default; name the one to canary with --workload", svc.name, strings.Join(wn, ", "))
		for _, w := range ws {
			drop[w] = true
		}
	}
	if len(drop) > 0 {
		kept := r.workloads[:0]
		for _, w := range r.workloads {
			if !drop[w] {
				kept = append(kept, w)
			}
		}
		r.workloads = kept
	}

	// A Service that selects a canaried Deployment and others too: say what happens.
	selectedBy := map[*service][]*deployment{}
	for _, dep := range r.deployments {
		for _, svc := range index.selecting(dep.ns, dep.labels) {
			selectedBy[svc] = append(selectedBy[svc], dep)
		}
	}
	for _, w := range r.workloads {
		for _, svc := range w.services {
			var others []string
			for _, dep := range selectedBy[svc] {
				if dep != w.d {
					others = append(others, dep.name)
				}
			}
			if len(others) > 0 && !r.hasVirtualServiceFor(svc) {
				r.warnf("Service %s also selects Deployments %s; while %s is canaried, requests to %s go only to %s's production and canary pods",
					svc.name, strings.Join(others, ", "), w.name, svc.name, w.name)
			}
		}
	}

	for _, w := range r.workloads {
		for _, doc := range r.autoscalers {
			n := doc.node
			kind, _ := n.Pipe(yaml.Lookup("spec", "scaleTargetRef", "kind"))
			name, _ := n.Pipe(yaml.Lookup("spec", "scaleTargetRef", "name"))
			if kind != nil && name != nil && yaml.GetValue(kind) == "Deployment" && yaml.GetValue(name) == w.name && sameNamespace(n.GetNamespace(), w.d.ns) {
				w.hpas = append(w.hpas, doc)
			}
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

func (r *release) hasVirtualServiceFor(svc *service) bool {
	for _, doc := range r.vservices {
		for _, h := range stringList(doc.node, "spec", "hosts") {
			if hostMatches(h, svc.name, svc.ns) {
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
func (r *release) checkServices() error {
	for _, w := range r.workloads {
		production := r.productionTemplate(w)
		for _, svc := range w.services {
			if !selects(svc.selector, w.d.labels) {
				return fmt.Errorf("Service %s selects the production pods of Deployment %s but not its canary pods (selector %s, new pod labels %s); keep the labels the Service selects the same across versions",
					svc.name, w.name, formatLabels(svc.selector), formatLabels(w.d.labels))
			}
			if !selects(svc.selector, templateLabels(production)) {
				return fmt.Errorf("Service %s selects the canary pods of Deployment %s but not its production pods (selector %s, production pod labels %s); keep the labels the Service selects the same across versions",
					svc.name, w.name, formatLabels(svc.selector), formatLabels(templateLabels(production)))
			}
			for _, port := range namedTargetPorts(svc.doc.node) {
				for _, t := range []struct {
					role string
					tmpl *yaml.RNode
				}{{"canary", w.d.template}, {"production", production}} {
					if !hasContainerPort(t.tmpl, port) {
						return fmt.Errorf("Service %s targets port %q, which no container of Deployment %s's %s pods names; name the container port %q or use a port number",
							svc.name, port, w.name, t.role, port)
					}
				}
			}
		}
	}
	return nil
}

// productionTemplate is the pod template production runs at this stage, before the
// track label is added.
func (r *release) productionTemplate(w *workload) *yaml.RNode {
	if w.pinned != nil && !r.stage.ProductionFromRender() {
		return w.pinned
	}
	return w.d.template
}

func namedTargetPorts(svc *yaml.RNode) []string {
	ports, err := svc.Pipe(yaml.Lookup("spec", "ports"))
	if err != nil || ports == nil {
		return nil
	}
	var out []string
	for _, p := range ports.YNode().Content {
		tp := yaml.NewRNode(p).Field("targetPort")
		if tp != nil && tp.Value.YNode().Tag == "!!str" {
			out = append(out, tp.Value.YNode().Value)
		}
	}
	return out
}

func hasContainerPort(tmpl *yaml.RNode, name string) bool {
	for _, field := range []string{"containers", "initContainers"} {
		containers, _ := tmpl.Pipe(yaml.Lookup("spec", field))
		if containers == nil {
			continue
		}
		for _, c := range containers.YNode().Content {
			ports := yaml.NewRNode(c).Field("ports")
			if ports == nil {
				continue
			}
			for _, p := range ports.Value.YNode().Content {
				if n := yaml.NewRNode(p).Field("name"); n != nil && n.Value.YNode().Value == name {
					return true
				}
			}
		}
	}
	return false
}

func stringList(n *yaml.RNode, path ...string) []string {
	l, err := n.Pipe(yaml.Lookup(path...))
	if err != nil || l == nil || l.YNode().Kind != yaml.SequenceNode {
		return nil
	}
	var out []string
	for _, c := range l.YNode().Content {
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
