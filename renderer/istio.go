package renderer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
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
		bySubset := w.Stage != stages.Stable || w.labeled
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
		if err := r.checkHostsPlaceable(rt.svc); err != nil {
			return err
		}
		subsets := r.subsets(rt.w)
		found := false
		for _, doc := range r.destrules {
			host := stringAt(doc.node, "spec", "host")
			if !r.hostMatches(host, rt.svc) {
				continue
			}
			found = true
			policies := r.subsetPolicies(doc, rt.w)
			if err := upsertSubsets(doc.node, subsets); err != nil {
				return fmt.Errorf("DestinationRule %s: %w", doc.node.GetName(), err)
			}
			for _, el := range lookup(doc.node.YNode(), "spec", "subsets").Content {
				if name := field(el, "name"); name != nil && policies[name.Value] != nil {
					setField(el, "trafficPolicy", yaml.CopyYNode(policies[name.Value]))
				}
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

// subsetPolicies finds, in a chart's DestinationRule, the trafficPolicy of the
// subsets that covered the workload's pods (TLS mode, connection pool, outlier
// detection...): the production subset keeps the policy of the chart's subset that
// selects production's pods, the canary subset that of the one that selects the
// canary's. Without it, splitting the traffic would silently drop the chart's
// settings for those pods. When several subsets with different policies cover the
// same pods, the first one counts, with a warning.
func (r *release) subsetPolicies(doc *document, w *workload) map[string]*yaml.Node {
	list := lookup(doc.node.YNode(), "spec", "subsets")
	if list == nil {
		return nil
	}
	out := map[string]*yaml.Node{}
	for _, side := range []struct {
		subset string
		labels map[string]string
	}{{SubsetProduction, w.productionLabels}, {SubsetCanary, w.d.labels}} {
		var from string
		for _, el := range list.Content {
			name, policy := field(el, "name"), field(el, "trafficPolicy")
			if name == nil || name.Value == SubsetProduction || name.Value == SubsetCanary ||
				!selects(stringMapNode(field(el, "labels")), side.labels) {
				continue
			}
			if from == "" {
				from, out[side.subset] = name.Value, policy
				continue
			}
			if !equalNode(policy, out[side.subset]) {
				r.warnf("DestinationRule %s: subsets %s and %s both select Deployment %s's %s pods, with different trafficPolicy; the %s subset takes %s's",
					doc.node.GetName(), from, name.Value, w.name, side.subset, side.subset, from)
			}
		}
	}
	return out
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

// routeVirtualServices weights the traffic to each canaried Deployment. In the
// chart's own VirtualServices (for the Service's host, or a gateway's routing to it),
// every http, tcp and tls route whose destinations all reach the Deployment's pods
// (the bare host, or a subset whose labels select them) gets the production/canary
// pair; its matches, timeouts, retries, name and destination port are kept, and
// routes that reach other Deployments (subset v1 of another version, say) are left
// alone. A TCP or TLS port of the Service that no route of the host's
// VirtualService covers gets a weighted route of its own. When no VirtualService has
// the host, one is created: http routes for the HTTP ports, a tcp route per TCP
// port, a tls route per TLS port (Istio ignores http routes on those).
func (r *release) routeVirtualServices() error {
	for _, rt := range r.routings() {
		plan := planPorts(rt.svc)
		found := false
		var sni []string
		for _, doc := range r.vservices {
			var names []string
			for _, h := range stringList(doc.node, "spec", "hosts") {
				if r.hostMatches(h, rt.svc) {
					names = append(names, h)
				}
			}
			forHost := len(names) > 0
			found = found || forHost
			weighted, err := r.weightRoutes(doc, rt)
			if err != nil {
				return err
			}
			if forHost && rt.bySubset {
				added, err := r.addL4Routes(doc, rt, plan, names)
				if err != nil {
					return err
				}
				weighted += added
				if sni == nil {
					sni = names
				}
			}
			if forHost && rt.bySubset {
				r.warnNoTraffic(doc, rt, weighted)
			}
		}
		if found {
			if sni == nil {
				sni = []string{rt.svc.name}
			}
			r.warnPorts(rt, plan, sni)
			continue
		}
		sni = r.sniNames(rt.svc)
		r.warnPorts(rt, plan, sni)
		if !plan.routed {
			continue // no port a route could split: warned above
		}
		// With TLS ports, every name a client may send as SNI is a host too (Istio
		// requires sniHosts to be among the hosts).
		spec := &networking.VirtualService{Hosts: sni}
		if plan.http {
			route, err := r.destinations(rt, nil)
			if err != nil {
				return err
			}
			spec.Http = []*networking.HTTPRoute{{Route: route}}
		}
		spec.Tcp, spec.Tls = r.l4Routes(rt, plan, rt.svc.name, sni)
		if gw := rt.w.Gateway; gw != nil {
			spec.Gateways = []string{gw.Name, "mesh"}
			spec.Hosts = append(spec.Hosts, gw.Hosts...)
		}
		n, err := r.istioObject("VirtualService", r.freeName("VirtualService", rt.svc.name), rt.svc, spec)
		if err != nil {
			return err
		}
		for _, section := range []string{"http", "tcp", "tls"} {
			if err := fixZeroWeights(n, "spec", section); err != nil {
				return err
			}
		}
		if rt.bySubset && plan.http {
			http := lookup(n.YNode(), "spec", "http")
			if err := r.decorateWeighted(http.Content[0], rt.w, rt.svc.name, nil); err != nil {
				return err
			}
			if http.Content, err = r.withExtras(http.Content, map[int]bool{0: true}, rt.w, rt.svc.name, nil); err != nil {
				return err
			}
		}
		if _, err := attach(rt.w.canary, rt.w.source, rt.w.filename, n); err != nil {
			return err
		}
	}
	return nil
}

// weightRoutes rewrites the routes of one VirtualService that reach the workload
// and returns how many it rewrote. The routing extras (match, sticky, user
// percentages, mirror) are HTTP routing: only http routes get them.
func (r *release) weightRoutes(doc *document, rt routing) (int, error) {
	if http := lookup(doc.node.YNode(), "spec", "http"); http != nil && rt.w.prior != nil {
		// A stream rendered before: its routing extras are made anew for this stage.
		if err := r.undoPriorRouting(doc, http, rt); err != nil {
			return 0, err
		}
	}
	if !rt.bySubset {
		return 0, nil // stable, production not labeled yet: the chart's routing stands
	}
	subsets := r.subsetLabels(rt.svc)
	weighted := 0
	for _, section := range []string{"http", "tcp", "tls"} {
		routes := lookup(doc.node.YNode(), "spec", section)
		if routes == nil {
			continue
		}
		indexes := map[int]bool{}
		var host string
		var port *yaml.Node
		for i, el := range routes.Content {
			dests := field(el, "route")
			if dests == nil || len(dests.Content) == 0 {
				continue
			}
			reaches := true
			for _, d := range dests.Content {
				if !r.reaches(d, rt, subsets) {
					reaches = false
				}
			}
			if !reaches {
				continue
			}
			if err := r.checkCutOff(doc, el, section, i, dests, rt, subsets); err != nil {
				return 0, err
			}
			p, _ := r.portOfDestinationsTo(yaml.NewRNode(dests), rt.svc)
			if err := r.replaceDestinations(doc, yaml.NewRNode(el), rt, p); err != nil {
				return 0, err
			}
			weighted++
			if section != "http" {
				continue
			}
			host = stringAt(yaml.NewRNode(field(el, "route").Content[0]), "destination", "host")
			if p != nil {
				port = p.YNode()
			}
			if err := r.decorateWeighted(el, rt.w, host, port); err != nil {
				return 0, err
			}
			indexes[i] = true
		}
		if len(indexes) > 0 {
			var err error
			if routes.Content, err = r.withExtras(routes.Content, indexes, rt.w, host, port); err != nil {
				return 0, fmt.Errorf("VirtualService %s: %w", doc.node.GetName(), err)
			}
		}
	}
	return weighted, nil
}

// undoPriorRouting takes out of a VirtualService what an earlier render added for
// the workload: the extra routes ahead of the weighted one (one destination, a
// production or canary subset of the host, named by extraRoutes' suffixes) and the
// mirror to the canary. Where production's pods may lack the track label (bySubset
// false), the weighted pairs go back to the bare host, as a first render leaves them.
func (r *release) undoPriorRouting(doc *document, http *yaml.Node, rt routing) error {
	ours := func(dest *yaml.Node) bool {
		d := lookup(dest, "destination")
		if d == nil {
			d = dest // a mirror is a bare Destination
		}
		host, subset := field(d, "host"), field(d, "subset")
		return host != nil && subset != nil && r.hostMatches(host.Value, rt.svc) &&
			(subset.Value == SubsetProduction || subset.Value == SubsetCanary)
	}
	kept := http.Content[:0]
	for _, el := range http.Content {
		dests := field(el, "route")
		if name := field(el, "name"); name != nil && isExtraRouteName(name.Value) &&
			dests != nil && len(dests.Content) == 1 && ours(dests.Content[0]) {
			doc.changed = true
			continue
		}
		if m := field(el, "mirror"); m != nil && ours(m) {
			deleteField(el, "mirror")
			deleteField(el, "mirrorPercentage")
			doc.changed = true
		}
		if !rt.bySubset && dests != nil && len(dests.Content) > 0 {
			all := true
			for _, d := range dests.Content {
				all = all && ours(d)
			}
			if all {
				p, _ := r.portOfDestinationsTo(yaml.NewRNode(dests), rt.svc)
				if err := r.replaceDestinations(doc, yaml.NewRNode(el), rt, p); err != nil {
					return err
				}
			}
		}
		kept = append(kept, el)
	}
	http.Content = kept
	return nil
}

// isExtraRouteName reports whether a route name is one withExtras gives.
func isExtraRouteName(name string) bool {
	for _, suffix := range []string{"sticky", "match", "users-" + SubsetCanary, "users-" + SubsetProduction} {
		if name == "helm-canary-"+suffix || strings.HasSuffix(name, "-"+suffix) {
			return true
		}
	}
	return false
}

// addL4Routes appends to a VirtualService for the Service's host a weighted tcp or
// tls route for each TCP or TLS port of the Service that none of its routes covers
// (a route covers a port when one of its matches names the port or no port), and
// returns how many it added. Without them, Istio sends that port's connections to
// every pod of the Service, by pod count.
func (r *release) addL4Routes(doc *document, rt routing, plan portPlan, names []string) (int, error) {
	added := 0
	spec := lookup(doc.node.YNode(), "spec")
	tcp, tls := r.l4Routes(rt, plan, rt.svc.name, names)
	for _, s := range []struct {
		section string
		ports   []servicePort
		routes  []proto.Message
	}{
		{"tcp", plan.tcp, messages(tcp)},
		{"tls", plan.tls, messages(tls)},
	} {
		for i, p := range s.ports {
			existing := field(spec, s.section)
			if existing != nil && coversPort(existing, p.number) {
				continue
			}
			n, err := toNode(s.routes[i])
			if err != nil {
				return 0, err
			}
			zeroWeights(n.YNode())
			if existing == nil {
				existing = &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq}
				setField(spec, s.section, existing)
			}
			existing.Content = append(existing.Content, n.YNode())
			doc.changed = true
			added++
		}
	}
	return added, nil
}

func messages[T proto.Message](l []T) []proto.Message {
	out := make([]proto.Message, len(l))
	for i, m := range l {
		out[i] = m
	}
	return out
}

// coversPort reports whether one of the routes applies to connections on port.
func coversPort(routes *yaml.Node, port uint32) bool {
	for _, route := range routes.Content {
		matches := field(route, "match")
		if matches == nil || len(matches.Content) == 0 {
			return true
		}
		for _, m := range matches.Content {
			p := field(m, "port")
			if p == nil || p.Value == "0" || p.Value == strconv.FormatUint(uint64(port), 10) {
				return true
			}
		}
	}
	return false
}

// checkCutOff refuses to weight a route whose destinations also reach other
// Deployments' pods (the bare host of a Service that selects several Deployments,
// or a subset whose labels select theirs too): the production/canary pair reaches
// only the workload's pods, so the others would lose that traffic.
func (r *release) checkCutOff(doc *document, route *yaml.Node, section string, i int, dests *yaml.Node, rt routing, subsets map[string]map[string]string) error {
	others := rt.w.others[rt.svc]
	if len(others) == 0 {
		return nil
	}
	var cut []*deployment
	for _, d := range dests.Content {
		dest := lookup(d, "destination")
		var rest map[string]string
		if subset := field(dest, "subset"); subset != nil && subset.Value != "" {
			rest = map[string]string{}
			for k, v := range subsets[subset.Value] {
				if k != r.track {
					rest[k] = v
				}
			}
		}
		for _, o := range others {
			if (len(rest) == 0 || selects(rest, o.labels)) && !slices.Contains(cut, o) {
				cut = append(cut, o)
			}
		}
	}
	if len(cut) == 0 {
		return nil
	}
	name := fmt.Sprintf("%s[%d]", section, i)
	if n := field(route, "name"); n != nil && n.Value != "" {
		name = fmt.Sprintf("%s (%s)", name, n.Value)
	}
	names := deploymentNames(cut)
	return fmt.Errorf("VirtualService %s route %s sends traffic for %s to the pods of Deployment %s and also of %s: splitting it between %s's production and canary subsets would cut %s off. "+
		"Route each Deployment by a DestinationRule subset of its own labels in that VirtualService (as bookinfo's reviews does); helm-canary then splits only the routes that reach %s",
		doc.node.GetName(), name, rt.svc.name, rt.w.name, names, rt.w.name, names, rt.w.name)
}

// reaches reports whether a route destination sends traffic to the workload's pods.
func (r *release) reaches(dest *yaml.Node, rt routing, subsets map[string]map[string]string) bool {
	host := field(lookup(dest, "destination"), "host")
	if host == nil || !r.hostMatches(host.Value, rt.svc) {
		return false
	}
	subset := field(lookup(dest, "destination"), "subset")
	if subset == nil || subset.Value == "" {
		return true
	}
	labels, known := subsets[subset.Value]
	if !known {
		return false // defined outside this release: leave it to its owner
	}
	// Our own production/canary subsets add the track label to the pod labels.
	rest := make(map[string]string, len(labels))
	for k, v := range labels {
		if k != r.track {
			rest[k] = v
		}
	}
	return len(rest) == 0 || selects(rest, rt.w.d.labels)
}

// subsetLabels maps the subset names of the DestinationRules for a Service's host to
// their labels.
func (r *release) subsetLabels(svc *service) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, doc := range r.destrules {
		if !r.hostMatches(stringAt(doc.node, "spec", "host"), svc) {
			continue
		}
		list := lookup(doc.node.YNode(), "spec", "subsets")
		if list == nil {
			continue
		}
		for _, s := range list.Content {
			if name := field(s, "name"); name != nil {
				out[name.Value] = stringMapNode(field(s, "labels"))
			}
		}
	}
	return out
}

// replaceDestinations sets a route's destinations to the weighted production and
// canary subsets, on the host name and port the route already used.
func (r *release) replaceDestinations(doc *document, route *yaml.RNode, rt routing, port *yaml.RNode) error {
	host := rt.svc.name
	if dests := route.Field("route"); dests != nil {
		for _, d := range dests.Value.YNode().Content {
			if h := stringAt(yaml.NewRNode(d), "destination", "host"); r.hostMatches(h, rt.svc) {
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
		{Destination: &networking.Destination{Host: h, Subset: SubsetProduction}, Weight: int32(rt.w.Stage.ProductionWeight())},
		{Destination: &networking.Destination{Host: h, Subset: SubsetCanary}, Weight: int32(rt.w.Stage.CanaryWeight())},
	}, nil
}

func (r *release) portOfDestinationsTo(dests *yaml.RNode, svc *service) (*yaml.RNode, bool) {
	for _, d := range dests.YNode().Content {
		dn := yaml.NewRNode(d)
		if !r.hostMatches(stringAt(dn, "destination", "host"), svc) {
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
		zeroWeights(route)
	}
	return nil
}

// zeroWeights writes weight: 0 on a route's weighted destinations that lack one.
func zeroWeights(route *yaml.Node) {
	dests := field(route, "route")
	if dests == nil || len(dests.Content) < 2 {
		return
	}
	for _, d := range dests.Content {
		if field(d, "weight") == nil {
			setField(d, "weight", intScalar("0"))
		}
	}
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
			return name + CanarySuffix
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

// DefaultClusterDomain is the cluster DNS domain Kubernetes installs use unless
// kubelet's clusterDomain says otherwise.
const DefaultClusterDomain = "cluster.local"

// HostMatches reports whether an Istio host names Service name of namespace ns in a
// cluster whose DNS domain is domain ("" is cluster.local): its short name, or
// name.ns, name.ns.svc or name.ns.svc.<domain>. A short name resolves in the
// namespace of the rule that holds it, which for a release's objects is the
// Service's own. With ns unknown (""), a host that names a namespace is not taken
// for the Service: it may be another namespace's Service of the same name, which
// has no production or canary subsets. It is the one host matcher: package
// canaried (status, stage inference, the route simulator) reads the manifests back
// with it.
func HostMatches(host, name, ns, domain string) bool {
	if name == "" {
		return false
	}
	if host == name {
		return true
	}
	if ns == "" {
		return false
	}
	rest, ok := strings.CutPrefix(host, name+"."+ns)
	if !ok {
		return false
	}
	if domain == "" {
		domain = DefaultClusterDomain
	}
	return rest == "" || rest == ".svc" || rest == ".svc."+domain
}

// checkHostsPlaceable refuses a chart's DestinationRule or VirtualService for a
// host that names the Service in some namespace when the release's namespace is
// unknown: if it is this release's Service, helm-canary must split that object in
// place, and making its own for the short name would put a second one on the host
// (hazard 5); if it is another namespace's, it must be left alone. Only the
// namespace tells which.
func (r *release) checkHostsPlaceable(svc *service) error {
	if svc.ns != "" || r.opts.Namespace != "" {
		return nil
	}
	for _, docs := range [][]*document{r.destrules, r.vservices} {
		for _, doc := range docs {
			hosts := stringList(doc.node, "spec", "hosts")
			if doc.kind == "DestinationRule" {
				hosts = []string{stringAt(doc.node, "spec", "host")}
			}
			for _, h := range hosts {
				if ns, ok := namesAnyNamespace(h, svc.name, r.opts.ClusterDomain); ok {
					return fmt.Errorf("%s %s is for host %s, Service %s in namespace %s, and render was not told the release's namespace, so it cannot tell whether that is this release's Service %s (whose %s must be split in place, not doubled) or another namespace's (to be left alone): "+
						"pass the release's namespace with --namespace (a post-renderer does not inherit helm's -n)",
						doc.kind, doc.node.GetName(), h, svc.name, ns, svc.name, doc.kind)
				}
			}
		}
	}
	return nil
}

// namesAnyNamespace reports whether host would name Service name in some namespace
// (name.<ns>[.svc[.<domain>]]), and which: a host the render cannot place when it
// does not know the release's namespace.
func namesAnyNamespace(host, name, domain string) (string, bool) {
	rest, ok := strings.CutPrefix(host, name+".")
	if !ok {
		return "", false
	}
	ns, suffix, _ := strings.Cut(rest, ".")
	if domain == "" {
		domain = DefaultClusterDomain
	}
	if ns == "" || (suffix != "" && suffix != "svc" && suffix != "svc."+domain) {
		return "", false
	}
	return ns, true
}

// hostMatches is HostMatches for a Service of this release: in its own namespace,
// else the release's, in the configured cluster domain. When the release's
// namespace is unknown (render without --namespace), a host naming the Service in
// some namespace is left alone, with a warning once per host.
func (r *release) hostMatches(host string, svc *service) bool {
	ns := svc.ns
	if ns == "" {
		ns = r.opts.Namespace
	}
	if HostMatches(host, svc.name, ns, r.opts.ClusterDomain) {
		return true
	}
	if ns != "" {
		if domain, ok := strings.CutPrefix(host, svc.name+"."+ns+".svc."); ok && !r.warnedHosts[host] {
			r.warnHost(host, fmt.Sprintf("host %s would name Service %s in a cluster whose DNS domain is %s, not %s, so it is not taken for it and left as it is. If that is the cluster's domain, pass --cluster-domain %s (canary.clusterDomain)",
				host, svc.name, domain, r.clusterDomain(), domain))
		}
		return false
	}
	if other, ok := namesAnyNamespace(host, svc.name, r.opts.ClusterDomain); ok && !r.warnedHosts[host] {
		r.warnHost(host, fmt.Sprintf("host %s names Service %s in namespace %s, and render does not know the release's namespace, so it is left as it is (routes to it are not split). If %s is this release's namespace, pass --namespace %s",
			host, svc.name, other, other, other))
	}
	return false
}

// warnHost warns about a host once.
func (r *release) warnHost(host, msg string) {
	if r.warnedHosts == nil {
		r.warnedHosts = map[string]bool{}
	}
	r.warnedHosts[host] = true
	r.warnings = append(r.warnings, msg)
}

func (r *release) clusterDomain() string {
	if r.opts.ClusterDomain == "" {
		return DefaultClusterDomain
	}
	return r.opts.ClusterDomain
}

// The Istio types marshal themselves with the protobuf JSON rules.
var _ json.Marshaler = (*networking.VirtualService)(nil)

// warnNoTraffic says where a VirtualService for the Service's host leaves traffic
// unsplit. http routes delegated to a VirtualService this release does not render
// are decided by that delegate, which helm-canary cannot weight (delegates it
// renders are weighted like any VirtualService). A VirtualService with routes of
// its own (http, tcp or tls) of which none was weighted sends the Deployment's
// pods nothing through them.
func (r *release) warnNoTraffic(doc *document, rt routing, weighted int) {
	var outside []string
	own := 0
	for _, section := range []string{"http", "tcp", "tls"} {
		routes := lookup(doc.node.YNode(), "spec", section)
		if routes == nil {
			continue
		}
		for _, route := range routes.Content {
			d := field(route, "delegate")
			if d == nil {
				own++
				continue
			}
			name := stringAt(yaml.NewRNode(d), "name")
			ns := stringAt(yaml.NewRNode(d), "namespace")
			if !r.rendersVirtualService(name, ns, doc.ns) {
				if ns != "" {
					name = ns + "/" + name
				}
				outside = append(outside, name)
			}
		}
	}
	if len(outside) > 0 {
		r.warnf("VirtualService %s delegates its http routes for host %s to VirtualService %s, which this release does not render: helm-canary cannot weight its routes, so the traffic they take is not split between Deployment %s's production and canary (a route to the bare host reaches both by pod count)",
			doc.node.GetName(), rt.svc.name, strings.Join(outside, ", "), rt.w.name)
	}
	if weighted == 0 && own > 0 {
		r.warnf("VirtualService %s sends no traffic for host %s to Deployment %s's pods (its http, tcp and tls routes go to other hosts or subsets), so the canary gets none from it",
			doc.node.GetName(), rt.svc.name, rt.w.name)
	}
}

// rendersVirtualService reports whether the stream holds the VirtualService a
// delegate names (its namespace defaults to that of the VirtualService delegating,
// in namespace from). With a namespace unknown on either side, the name decides.
func (r *release) rendersVirtualService(name, ns, from string) bool {
	if ns == "" {
		ns = from
	}
	if ns == "" {
		ns = r.opts.Namespace
	}
	for _, doc := range r.vservices {
		if doc.node.GetName() != name {
			continue
		}
		docNS := doc.ns
		if docNS == "" {
			docNS = r.opts.Namespace
		}
		if ns == "" || docNS == "" || ns == docNS {
			return true
		}
	}
	return false
}
