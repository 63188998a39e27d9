package renderer

import (
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/stages"
)

const istioAPIVersion = "networking.istio.io/v1"

// routing is how one Service's traffic is split at this stage.
type routing struct {
	w   *workload
	svc *service
	// bySubset is false only at stable while production's running pods may still
	// lack the track label: then the chart's own routing is kept (hazard 2).
	bySubset bool
}

func (r *release) routings() []routing {
	var out []routing
	for _, w := range r.workloads {
		bySubset := r.stage != stages.Stable || w.labeled
		for _, svc := range w.services {
			out = append(out, routing{w: w, svc: svc, bySubset: bySubset})
		}
	}
	return out
}

// routeDestinationRules adds the production and canary subsets to the Service's
// DestinationRule, or creates one (hazard 5: never a second one for a host).
func (r *release) routeDestinationRules() error {
	for _, rt := range r.routings() {
		subsets := r.subsets(rt.w)
		found := false
		for _, doc := range r.destrules {
			host := stringAt(doc.node, "spec", "host")
			if !hostMatches(host, rt.svc.name, rt.svc.ns) {
				continue
			}
			found = true
			if err := upsertSubsets(doc.node, subsets); err != nil {
				return fmt.Errorf("DestinationRule %s: %w", doc.node.GetName(), err)
			}
			doc.changed = true
		}
		if found {
			continue
		}
		spec := &networking.DestinationRule{Host: rt.svc.name, Subsets: subsets}
		n, err := r.istioObject("DestinationRule", r.freeName("DestinationRule", rt.svc.name), rt.svc, spec)
		if err != nil {
			return err
		}
		if _, err := attach(rt.w.canary, rt.w.source, rt.w.filename, n); err != nil {
			return err
		}
	}
	return nil
}

func (r *release) subsets(w *workload) []*networking.Subset {
	make := func(name, track string) *networking.Subset {
		labels := map[string]string{}
		// The Deployment's own selector labels keep the subset to this Deployment's
		// pods even when the Service also selects other Deployments.
		for k, v := range w.d.selector {
			labels[k] = v
		}
		labels[r.track] = track
		return &networking.Subset{Name: name, Labels: labels}
	}
	return []*networking.Subset{make(SubsetProduction, TrackProduction), make(SubsetCanary, TrackCanary)}
}

func upsertSubsets(dr *yaml.RNode, subsets []*networking.Subset) error {
	list, err := dr.Pipe(yaml.LookupCreate(yaml.SequenceNode, "spec", "subsets"))
	if err != nil {
		return err
	}
	for _, s := range subsets {
		n, err := toNode(s)
		if err != nil {
			return err
		}
		replaced := false
		for i, el := range list.YNode().Content {
			if f := yaml.NewRNode(el).Field("name"); f != nil && f.Value.YNode().Value == s.Name {
				list.YNode().Content[i] = n.YNode()
				replaced = true
			}
		}
		if !replaced {
			list.YNode().Content = append(list.YNode().Content, n.YNode())
		}
	}
	return nil
}

// routeVirtualServices weights the traffic to each canaried Service. A
// VirtualService for the Service's host gets its default route (the first http
// route without a match) rewritten and keeps everything else; routes of other
// VirtualServices (a gateway's, typically) that send to the Service without naming a
// subset are weighted too, because the gateway applies only its own rules. When no
// VirtualService has the host, one is created.
func (r *release) routeVirtualServices() error {
	for _, rt := range r.routings() {
		found := false
		for _, doc := range r.vservices {
			forHost := false
			for _, h := range stringList(doc.node, "spec", "hosts") {
				if hostMatches(h, rt.svc.name, rt.svc.ns) {
					forHost = true
				}
			}
			var err error
			if forHost {
				found = true
				err = r.weightDefaultRoute(doc, rt)
			} else {
				err = r.weightRoutesTo(doc, rt)
			}
			if err != nil {
				return err
			}
		}
		if found {
			continue
		}
		route, err := r.destinations(rt, nil)
		if err != nil {
			return err
		}
		spec := &networking.VirtualService{
			Hosts: []string{rt.svc.name},
			Http:  []*networking.HTTPRoute{{Route: route}},
		}
		n, err := r.istioObject("VirtualService", r.freeName("VirtualService", rt.svc.name), rt.svc, spec)
		if err != nil {
			return err
		}
		if err := fixZeroWeights(n, "spec", "http"); err != nil {
			return err
		}
		if _, err := attach(rt.w.canary, rt.w.source, rt.w.filename, n); err != nil {
			return err
		}
	}
	return nil
}

func (r *release) weightDefaultRoute(doc *document, rt routing) error {
	vs := doc.node
	http, _ := vs.Pipe(yaml.Lookup("spec", "http"))
	var def *yaml.RNode
	if http != nil {
		for _, el := range http.YNode().Content {
			route := yaml.NewRNode(el)
			if m := route.Field("match"); m == nil || len(m.Value.YNode().Content) == 0 {
				def = route
				break
			}
		}
	}
	if def == nil {
		return fmt.Errorf("VirtualService %s for host %s has no default route (an http route without match), so there is no traffic to weight; add one as the last http route",
			vs.GetName(), rt.svc.name)
	}
	if !rt.bySubset {
		return nil // stable, production not labeled yet: the chart's route stands
	}
	dests := def.Field("route")
	if dests == nil || len(dests.Value.YNode().Content) == 0 {
		return fmt.Errorf("VirtualService %s: the default route for host %s has no destinations (a redirect or direct response); helm-canary can only weight a route to %s",
			vs.GetName(), rt.svc.name, rt.svc.name)
	}
	port, ok := portOfDestinationsTo(dests.Value, rt.svc)
	if !ok {
		return fmt.Errorf("VirtualService %s: the default route for host %s sends traffic to other hosts only; point it at %s or canary without this VirtualService",
			vs.GetName(), rt.svc.name, rt.svc.name)
	}
	return r.replaceDestinations(doc, def, rt, port)
}

func (r *release) weightRoutesTo(doc *document, rt routing) error {
	if !rt.bySubset {
		return nil
	}
	http, _ := doc.node.Pipe(yaml.Lookup("spec", "http"))
	if http == nil {
		return nil
	}
	for _, el := range http.YNode().Content {
		route := yaml.NewRNode(el)
		dests := route.Field("route")
		if dests == nil || len(dests.Value.YNode().Content) == 0 {
			continue
		}
		all := true
		for _, d := range dests.Value.YNode().Content {
			dn := yaml.NewRNode(d)
			if !hostMatches(stringAt(dn, "destination", "host"), rt.svc.name, rt.svc.ns) || stringAt(dn, "destination", "subset") != "" {
				all = false
			}
		}
		if !all {
			continue
		}
		port, _ := portOfDestinationsTo(dests.Value, rt.svc)
		if err := r.replaceDestinations(doc, route, rt, port); err != nil {
			return err
		}
	}
	return nil
}

// replaceDestinations sets a route's destinations to the weighted production and
// canary subsets, on the host name and port the route already used.
func (r *release) replaceDestinations(doc *document, route *yaml.RNode, rt routing, port *yaml.RNode) error {
	host := rt.svc.name
	if dests := route.Field("route"); dests != nil {
		for _, d := range dests.Value.YNode().Content {
			if h := stringAt(yaml.NewRNode(d), "destination", "host"); hostMatches(h, rt.svc.name, rt.svc.ns) {
				host = h
				break
			}
		}
	}
	list, err := r.destinations(rt, &host)
	if err != nil {
		return err
	}
	var nodes []*yaml.Node
	for _, d := range list {
		n, err := toNode(d)
		if err != nil {
			return err
		}
		if port != nil {
			setField(lookupCreate(n.YNode(), "destination"), "port", yaml.CopyYNode(port.YNode()))
		}
		if field(n.YNode(), "weight") == nil && len(list) > 1 {
			setField(n.YNode(), "weight", intScalar("0"))
		}
		nodes = append(nodes, n.YNode())
	}
	setField(route.YNode(), "route", &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq, Content: nodes})
	doc.changed = true
	return nil
}

// destinations is the weighted pair for this stage; a route to the bare host when the
// production pods may not carry the track label yet.
func (r *release) destinations(rt routing, host *string) ([]*networking.HTTPRouteDestination, error) {
	h := rt.svc.name
	if host != nil {
		h = *host
	}
	if !rt.bySubset {
		return []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: h}}}, nil
	}
	return []*networking.HTTPRouteDestination{
		{Destination: &networking.Destination{Host: h, Subset: SubsetProduction}, Weight: int32(r.stage.ProductionWeight())},
		{Destination: &networking.Destination{Host: h, Subset: SubsetCanary}, Weight: int32(r.stage.CanaryWeight())},
	}, nil
}

func portOfDestinationsTo(dests *yaml.RNode, svc *service) (*yaml.RNode, bool) {
	for _, d := range dests.YNode().Content {
		dn := yaml.NewRNode(d)
		if !hostMatches(stringAt(dn, "destination", "host"), svc.name, svc.ns) {
			continue
		}
		port, _ := dn.Pipe(yaml.Lookup("destination", "port"))
		return port, true
	}
	return nil, false
}

// fixZeroWeights writes weight: 0 where the protobuf JSON encoding dropped it, so that
// a reader sees the canary at 0% rather than a destination without a weight.
func fixZeroWeights(n *yaml.RNode, path ...string) error {
	http, err := n.Pipe(yaml.Lookup(path...))
	if err != nil || http == nil {
		return err
	}
	for _, route := range http.YNode().Content {
		dests := yaml.NewRNode(route).Field("route")
		if dests == nil || len(dests.Value.YNode().Content) < 2 {
			continue
		}
		for _, d := range dests.Value.YNode().Content {
			dn := yaml.NewRNode(d)
			if dn.Field("weight") == nil {
				setField(d, "weight", intScalar("0"))
			}
		}
	}
	return nil
}

// istioObject wraps an istio.io/api spec into a networking.istio.io/v1 object for a
// Service: same namespace, the Service's labels.
func (r *release) istioObject(kind, name string, svc *service, spec proto.Message) (*yaml.RNode, error) {
	specNode, err := toNode(spec)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, name, err)
	}
	meta := &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}
	setField(meta, "name", stringNode(name))
	if svc.ns != "" {
		setField(meta, "namespace", stringNode(svc.ns))
	}
	if svc.labels != nil && len(svc.labels.Content) > 0 {
		// Same labels as the Service, in the Service's order.
		setField(meta, "labels", yaml.CopyYNode(svc.labels))
	}
	obj := &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}
	setField(obj, "apiVersion", stringNode(istioAPIVersion))
	setField(obj, "kind", stringNode(kind))
	setField(obj, "metadata", meta)
	setField(obj, "spec", specNode.YNode())
	n := yaml.NewRNode(obj)
	return n, nil
}

// freeName picks name for a new object of kind, or name-canary if the chart already
// has an object of that kind and name for another host.
func (r *release) freeName(kind, name string) string {
	docs := r.vservices
	if kind == "DestinationRule" {
		docs = r.destrules
	}
	for _, d := range docs {
		if d.node.GetName() == name {
			return name + canarySuffix
		}
	}
	return name
}

// toNode converts an istio.io/api message to YAML with the protobuf JSON field names.
func toNode(msg proto.Message) (*yaml.RNode, error) { return protoNode(msg) }

// plain drops the JSON flow and quoting styles so the YAML reads like a chart's.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}

func stringAt(n *yaml.RNode, path ...string) string {
	v, err := n.Pipe(yaml.Lookup(path...))
	if err != nil || v == nil {
		return ""
	}
	return yaml.GetValue(v)
}

// hostMatches reports whether an Istio host names the Service: its short name, or
// name.namespace[.svc[.cluster.local]]. With the namespace unknown (rendered
// without one), any namespace matches.
func hostMatches(host, name, ns string) bool {
	if host == name {
		return true
	}
	rest, ok := strings.CutPrefix(host, name+".")
	if !ok {
		return false
	}
	hostNS, suffix, _ := strings.Cut(rest, ".")
	if ns != "" && hostNS != ns {
		return false
	}
	return suffix == "" || suffix == "svc" || suffix == "svc.cluster.local"
}

// The Istio types marshal themselves with the protobuf JSON rules.
var _ json.Marshaler = (*networking.VirtualService)(nil)
