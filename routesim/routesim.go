package routesim

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/canaried"
	"github.com/helm-canary/helm-canary/renderer"
)

// Request is what the simulator routes.
type Request struct {
	Host    string
	Path    string // with an optional ?query
	Method  string
	Headers map[string]string // names are case-insensitive
	// Port is the Service port the connection is for; 0 routes as HTTP. A TCP or
	// TLS port (by Istio's protocol selection) takes the tcp or tls routes.
	Port uint32
	// SNI is the server name a TLS client sends (default: Host).
	SNI string
}

// Result is where one request goes.
type Result struct {
	Host string `json:"host"`
	// Subset is the most likely subset ("" for the bare host).
	Subset string `json:"subset"`
	// Shares are the subsets' probabilities when the route is weighted.
	Shares map[string]float64 `json:"shares,omitempty"`
	// VirtualService and Route name the rule that matched.
	VirtualService string `json:"virtualService,omitempty"`
	Route          string `json:"route,omitempty"`
	// Protocol is Istio's for the port asked about, and Note says how a port no
	// route applies to is reached (by pod count).
	Protocol string `json:"protocol,omitempty"`
	Note     string `json:"note,omitempty"`
}

// Router holds a manifest's routing rules.
type Router struct {
	vservices []*yaml.RNode
	// namespaces are the VirtualServices' own, or the release's: where their short
	// hosts resolve.
	namespaces []string
	taggers    []canaried.UserTagger
	manifest   *canaried.Manifest
}

// New reads the VirtualServices and user-tagging filters of a manifest. namespace
// is the release's ("" when unknown: then a VirtualService's short host names only
// requests for that short name, as the renderer would have routed it), domain the
// cluster's DNS domain ("" for the one the manifest records, else cluster.local).
func New(manifest []byte, namespace, domain string) (*Router, error) {
	m, err := canaried.Read(manifest, namespace)
	if err != nil {
		return nil, err
	}
	if domain != "" {
		m.Domain = domain
	}
	r := &Router{manifest: m}
	for _, vs := range m.Of("VirtualService") {
		if err := checkRegexes(vs.Node); err != nil {
			return nil, err
		}
		r.vservices = append(r.vservices, vs.Node)
		r.namespaces = append(r.namespaces, m.NamespaceOf(vs))
	}
	if r.taggers, err = m.UserTaggers(); err != nil {
		return nil, err
	}
	return r, nil
}

// Route finds the subset that serves a request.
func (r *Router) Route(req Request) (Result, error) {
	headers := map[string]string{}
	for k, v := range req.Headers {
		headers[strings.ToLower(k)] = v
	}
	// The gateway tags the request before any routing, as the filter does.
	for _, t := range r.taggers {
		id, ok := headers[t.UserHeader]
		switch {
		case !ok || id == "":
			delete(headers, t.TagHeader)
		case renderer.UserBucket(id) < t.Percent:
			headers[t.TagHeader] = renderer.TrackCanary
		default:
			headers[t.TagHeader] = renderer.TrackProduction
		}
	}
	path, query := req.Path, url.Values{}
	if path == "" {
		path = "/"
	}
	if p, q, ok := strings.Cut(path, "?"); ok {
		path = p
		query, _ = url.ParseQuery(q)
	}
	method := req.Method
	if method == "" {
		method = "GET"
	}
	vs := r.find(req.Host)
	if vs == nil {
		return Result{Host: req.Host}, fmt.Errorf("no VirtualService in the manifest has host %q (hosts: %s)", req.Host, strings.Join(r.hosts(), ", "))
	}
	if req.Port != 0 {
		proto, err := r.protocol(req.Host, req.Port)
		if err != nil {
			return Result{Host: req.Host}, err
		}
		switch renderer.RouteClass(proto) {
		case "tcp", "tls":
			return r.routeL4(vs, req, proto)
		case "none":
			return Result{Host: req.Host, Protocol: proto, Shares: map[string]float64{"": 1},
				Note: "Istio does not proxy " + proto + ": connections reach every pod of the Service, by pod count"}, nil
		}
	}
	routes, _ := vs.Pipe(yaml.Lookup("spec", "http"))
	if routes == nil {
		return Result{Host: req.Host}, fmt.Errorf("VirtualService %s has no http routes", vs.GetName())
	}
	for i, route := range routes.YNode().Content {
		if !matches(route, headers, path, method, query, req.Host) {
			continue
		}
		res := Result{Host: req.Host, VirtualService: vs.GetName(), Route: routeName(route, i), Shares: map[string]float64{}}
		dests := mapping(route, "route")
		if dests == nil || len(dests.Content) == 0 {
			return res, fmt.Errorf("VirtualService %s route %s has no destinations (redirect or direct response)", vs.GetName(), res.Route)
		}
		total := 0.0
		for _, d := range dests.Content {
			total += weight(d, len(dests.Content))
		}
		for _, d := range dests.Content {
			subset := scalar(mapping(d, "destination"), "subset")
			if total > 0 {
				res.Shares[subset] += weight(d, len(dests.Content)) / total
			}
		}
		best := -1.0
		keys := make([]string, 0, len(res.Shares))
		for k := range res.Shares {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if res.Shares[k] > best {
				res.Subset, best = k, res.Shares[k]
			}
		}
		return res, nil
	}
	return Result{Host: req.Host, VirtualService: vs.GetName()}, fmt.Errorf("no route of VirtualService %s matches the request (Istio answers 404)", vs.GetName())
}

// Users routes n synthetic users ("user-1" ... "user-n", in userHeader) and returns
// the share of traffic each subset gets.
func (r *Router) Users(host, userHeader string, n int, base Request) (map[string]float64, error) {
	shares := map[string]float64{}
	for i := 1; i <= n; i++ {
		req := base
		req.Host = host
		req.Headers = map[string]string{}
		for k, v := range base.Headers {
			req.Headers[k] = v
		}
		req.Headers[userHeader] = fmt.Sprintf("user-%d", i)
		res, err := r.Route(req)
		if err != nil {
			return nil, err
		}
		for k, v := range res.Shares {
			shares[k] += v / float64(n)
		}
	}
	return shares, nil
}

// find picks the VirtualService for a host: an exact host first, then one naming the
// same Service (by canaried.HostMatches, the renderer's matcher: a short name, or
// name.namespace[.svc[.<domain>]] in the namespace the VirtualService's host names
// or lives in), then a wildcard.
func (r *Router) find(host string) *yaml.RNode {
	var byService, wildcard *yaml.RNode
	for i, vs := range r.vservices {
		hosts, _ := vs.Pipe(yaml.Lookup("spec", "hosts"))
		if hosts == nil {
			continue
		}
		for _, h := range hosts.YNode().Content {
			switch {
			case h.Value == host:
				return vs
			case r.sameService(h.Value, r.namespaces[i], host):
				if byService == nil {
					byService = vs
				}
			case h.Value == "*" || (strings.HasPrefix(h.Value, "*.") && strings.HasSuffix(host, h.Value[1:])):
				if wildcard == nil {
					wildcard = vs
				}
			}
		}
	}
	if byService != nil {
		return byService
	}
	return wildcard
}

func (r *Router) hosts() []string {
	var out []string
	for _, vs := range r.vservices {
		if hosts, _ := vs.Pipe(yaml.Lookup("spec", "hosts")); hosts != nil {
			for _, h := range hosts.YNode().Content {
				out = append(out, h.Value)
			}
		}
	}
	return out
}

// matches: a route without match conditions matches everything; otherwise any one
// of its match requests must match, every condition of it.
func matches(route *yaml.Node, headers map[string]string, path, method string, query url.Values, authority string) bool {
	list := mapping(route, "match")
	if list == nil || len(list.Content) == 0 {
		return true
	}
	for _, m := range list.Content {
		if matchOne(m, headers, path, method, query, authority) {
			return true
		}
	}
	return false
}

func matchOne(m *yaml.Node, headers map[string]string, path, method string, query url.Values, authority string) bool {
	if sm := mapping(m, "uri"); sm != nil && !stringMatch(sm, path, true) {
		return false
	}
	if sm := mapping(m, "method"); sm != nil && !stringMatch(sm, method, true) {
		return false
	}
	if sm := mapping(m, "authority"); sm != nil && !stringMatch(sm, authority, true) {
		return false
	}
	if hs := mapping(m, "headers"); hs != nil {
		for i := 0; i+1 < len(hs.Content); i += 2 {
			v, ok := headers[strings.ToLower(hs.Content[i].Value)]
			if !stringMatch(hs.Content[i+1], v, ok) {
				return false
			}
		}
	}
	if hs := mapping(m, "withoutHeaders"); hs != nil {
		for i := 0; i+1 < len(hs.Content); i += 2 {
			v, ok := headers[strings.ToLower(hs.Content[i].Value)]
			if stringMatch(hs.Content[i+1], v, ok) {
				return false
			}
		}
	}
	if qs := mapping(m, "queryParams"); qs != nil {
		for i := 0; i+1 < len(qs.Content); i += 2 {
			vals, ok := query[qs.Content[i].Value]
			v := ""
			if ok {
				v = vals[0]
			}
			if !stringMatch(qs.Content[i+1], v, ok) {
				return false
			}
		}
	}
	return true
}

// checkRegexes compiles every regex of a VirtualService's http matches: Istio
// refuses a route with an invalid RE2, so the simulator must not read it as "no
// match".
func checkRegexes(vs *yaml.RNode) error {
	routes, _ := vs.Pipe(yaml.Lookup("spec", "http"))
	if routes == nil {
		return nil
	}
	for i, route := range routes.YNode().Content {
		list := mapping(route, "match")
		if list == nil {
			continue
		}
		for j, m := range list.Content {
			var fields []string
			var sms []*yaml.Node
			for _, f := range []string{"uri", "scheme", "method", "authority"} {
				fields, sms = append(fields, f), append(sms, mapping(m, f))
			}
			for _, f := range []string{"headers", "queryParams", "withoutHeaders"} {
				if hs := mapping(m, f); hs != nil && hs.Kind == yaml.MappingNode {
					for k := 0; k+1 < len(hs.Content); k += 2 {
						fields, sms = append(fields, f+"."+hs.Content[k].Value), append(sms, hs.Content[k+1])
					}
				}
			}
			for k, sm := range sms {
				if mapping(sm, "regex") == nil {
					continue
				}
				if _, err := regexp.Compile(scalar(sm, "regex")); err != nil {
					return fmt.Errorf("VirtualService %s route %s: match[%d].%s.regex %q is not a valid RE2 regular expression (Istio rejects the route): %v",
						vs.GetName(), routeName(route, i), j, fields[k], scalar(sm, "regex"), err)
				}
			}
		}
	}
	return nil
}

// stringMatch applies an Istio StringMatch; present says the value exists (an empty
// StringMatch matches presence). Regexes are RE2, matched against the whole value.
func stringMatch(sm *yaml.Node, v string, present bool) bool {
	if !present {
		return false
	}
	switch {
	case mapping(sm, "exact") != nil:
		return v == scalar(sm, "exact")
	case mapping(sm, "prefix") != nil:
		return strings.HasPrefix(v, scalar(sm, "prefix"))
	case mapping(sm, "regex") != nil:
		re, err := regexp.Compile("^(?:" + scalar(sm, "regex") + ")$")
		return err == nil && re.MatchString(v)
	}
	return true
}

func weight(d *yaml.Node, n int) float64 {
	w := mapping(d, "weight")
	if w == nil {
		if n == 1 {
			return 100
		}
		return 0
	}
	f, _ := strconv.ParseFloat(w.Value, 64)
	return f
}

func routeName(route *yaml.Node, i int) string {
	if n := scalar(route, "name"); n != "" {
		return n
	}
	return fmt.Sprintf("#%d", i)
}

func mapping(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node, key string) string {
	if v := mapping(n, key); v != nil {
		return v.Value
	}
	return ""
}

// sameService reports whether a request for host reaches the Service a
// VirtualService host (of a VirtualService in namespace vsNamespace) names.
func (r *Router) sameService(vsHost, vsNamespace, host string) bool {
	service, namespace, ok := canaried.ServiceHost(vsHost, r.manifest.Domain)
	if !ok {
		return false
	}
	if namespace == "" {
		namespace = vsNamespace // a short name resolves in its rule's namespace
	}
	return canaried.HostMatches(host, service, namespace, r.manifest.Domain)
}

// protocol is Istio's protocol for a port of the Service the host names.
func (r *Router) protocol(host string, port uint32) (string, error) {
	service, _, ok := canaried.ServiceHost(host, r.manifest.Domain)
	if !ok {
		return "", fmt.Errorf("--port needs a Service host: %q is not one", host)
	}
	svc := r.manifest.Get("Service", service)
	if svc == nil {
		return "", fmt.Errorf("no Service %s in the manifest, to tell port %d's protocol", service, port)
	}
	ports, _ := canaried.Dig(svc.Fields, "spec", "ports").([]any)
	for _, p := range ports {
		if n, _ := canaried.Dig(p, "port").(float64); uint32(n) == port {
			str := func(k string) string { v, _ := canaried.Dig(p, k).(string); return v }
			return renderer.IstioProtocol(str("name"), str("appProtocol"), str("protocol"), port), nil
		}
	}
	return "", fmt.Errorf("Service %s has no port %d", service, port)
}

// routeL4 routes a connection on a TCP or TLS port: the first tcp (tls) route
// whose match names the port or none (and, for tls, the SNI); none: by pod count.
func (r *Router) routeL4(vs *yaml.RNode, req Request, proto string) (Result, error) {
	section := renderer.RouteClass(proto)
	sni := req.SNI
	if sni == "" {
		sni = req.Host
	}
	res := Result{Host: req.Host, VirtualService: vs.GetName(), Protocol: proto}
	routes, _ := vs.Pipe(yaml.Lookup("spec", section))
	if routes != nil {
		for i, route := range routes.YNode().Content {
			if !l4Matches(route, req.Port, section == "tls", sni) {
				continue
			}
			res.Route = fmt.Sprintf("%s[%d]", section, i)
			res.Shares = map[string]float64{}
			dests := mapping(route, "route")
			if dests == nil {
				break
			}
			total := 0.0
			for _, d := range dests.Content {
				total += weight(d, len(dests.Content))
			}
			best := -1.0
			for _, d := range dests.Content {
				subset := scalar(mapping(d, "destination"), "subset")
				if total > 0 {
					res.Shares[subset] += weight(d, len(dests.Content)) / total
				}
				if res.Shares[subset] > best {
					res.Subset, best = subset, res.Shares[subset]
				}
			}
			return res, nil
		}
	}
	res.Shares = map[string]float64{"": 1}
	res.Note = fmt.Sprintf("no %s route of VirtualService %s applies to port %d", section, vs.GetName(), req.Port)
	if section == "tls" {
		res.Note += " with SNI " + sni
	}
	res.Note += ": connections reach every pod of the Service, by pod count"
	return res, nil
}

func l4Matches(route *yaml.Node, port uint32, tls bool, sni string) bool {
	matches := mapping(route, "match")
	if matches == nil || len(matches.Content) == 0 {
		return !tls
	}
	for _, m := range matches.Content {
		if p := scalar(m, "port"); p != "" && p != "0" && p != fmt.Sprint(port) {
			continue
		}
		if !tls {
			return true
		}
		if hosts := mapping(m, "sniHosts"); hosts != nil {
			for _, h := range hosts.Content {
				if h.Value == sni || (strings.HasPrefix(h.Value, "*.") && strings.HasSuffix(sni, h.Value[1:])) {
					return true
				}
			}
		}
	}
	return false
}
