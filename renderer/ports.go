package renderer

import (
	"fmt"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// servicePort is one entry of a Service's spec.ports, as Istio reads it.
type servicePort struct {
	name        string
	number      uint32
	protocol    string // the Kubernetes protocol: TCP (default), UDP or SCTP
	appProtocol string
}

// Routing classes of a Service port: which section of a VirtualService applies to
// it in the sidecars and gateways.
const (
	routeHTTP = "http" // http routes
	routeTCP  = "tcp"  // tcp routes (opaque TCP, and Istio's mongo, mysql, redis)
	routeTLS  = "tls"  // tls routes, matched on SNI (TLS the mesh does not decrypt)
	routeAuto = "auto" // Istio sniffs: http routes for HTTP, tcp routes for the rest
	routeNone = "none" // Istio does not proxy it (UDP, SCTP)
)

// IstioProtocol is the protocol Istio assigns a Service port, by its rules of
// explicit protocol selection (istio.io/istio pkg/config/kube ConvertProtocol):
// UDP ports are UDP; appProtocol wins over the port name, and Kubernetes' standard
// appProtocols kubernetes.io/h2c, ws and wss are HTTP2, HTTP and HTTPS; otherwise
// the part of the name before the first "-" (grpc-web whole), case-insensitive.
// Anything else is "" (Istio detects the protocol), except the well-known
// server-first ports 25, 53, 3306 and 27017, which are TCP.
func IstioProtocol(name, appProtocol, protocol string, number uint32) string {
	if strings.EqualFold(protocol, "UDP") {
		return "UDP"
	}
	if strings.EqualFold(protocol, "SCTP") {
		return "SCTP"
	}
	n := name
	if appProtocol != "" {
		n = appProtocol
		switch appProtocol {
		case "kubernetes.io/h2c":
			return "HTTP2"
		case "kubernetes.io/ws":
			return "HTTP"
		case "kubernetes.io/wss":
			return "HTTPS"
		}
	}
	if len(n) >= len("grpc-web") && strings.EqualFold(n[:len("grpc-web")], "grpc-web") {
		return "GRPC-Web"
	}
	if i := strings.IndexByte(n, '-'); i >= 0 {
		n = n[:i]
	}
	switch strings.ToLower(n) {
	case "tcp":
		return "TCP"
	case "udp":
		return "UDP"
	case "grpc":
		return "GRPC"
	case "http":
		return "HTTP"
	case "http_proxy":
		return "HTTP_PROXY"
	case "http2":
		return "HTTP2"
	case "https":
		return "HTTPS"
	case "tls":
		return "TLS"
	case "mongo":
		return "Mongo"
	case "redis":
		return "Redis"
	case "mysql":
		return "MySQL"
	}
	switch number {
	case 25, 53, 3306, 27017:
		return "TCP"
	}
	return ""
}

// RouteClass is the VirtualService section that routes a port of IstioProtocol p.
func RouteClass(p string) string {
	switch p {
	case "HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web":
		return routeHTTP
	case "TCP", "Mongo", "Redis", "MySQL":
		return routeTCP
	case "HTTPS", "TLS":
		return routeTLS
	case "":
		return routeAuto
	}
	return routeNone
}

func (p servicePort) istioProtocol() string {
	return IstioProtocol(p.name, p.appProtocol, p.protocol, p.number)
}

func (p servicePort) class() string { return RouteClass(p.istioProtocol()) }

// describe names a port for messages: "6379 (redis, Redis)".
func (p servicePort) describe() string {
	label := p.name
	if p.appProtocol != "" {
		label = strings.TrimPrefix(label+", appProtocol "+p.appProtocol, ", ")
	}
	proto := p.istioProtocol()
	if proto == "" {
		proto = "protocol detected by Istio"
	}
	if label == "" {
		return fmt.Sprintf("%d (%s)", p.number, proto)
	}
	return fmt.Sprintf("%d (%s: %s)", p.number, label, proto)
}

func servicePorts(spec *yaml.Node) []servicePort {
	ports := field(spec, "ports")
	if ports == nil {
		return nil
	}
	var out []servicePort
	for _, el := range ports.Content {
		p := servicePort{protocol: "TCP"}
		if v := field(el, "name"); v != nil {
			p.name = v.Value
		}
		if v := field(el, "protocol"); v != nil && v.Value != "" {
			p.protocol = v.Value
		}
		if v := field(el, "appProtocol"); v != nil {
			p.appProtocol = v.Value
		}
		if v := field(el, "port"); v != nil {
			n, err := strconv.ParseUint(v.Value, 10, 16)
			if err != nil {
				continue // the API server rejects it; nothing to route
			}
			p.number = uint32(n)
		}
		out = append(out, p)
	}
	return out
}

// portPlan is what a Service needs in a VirtualService: http routes for its HTTP
// (and sniffed) ports, one tcp route per TCP (and sniffed) port, one tls route per
// TLS port; none lists the ports no route can split.
type portPlan struct {
	http          bool
	tcp, tls      []servicePort
	none          []servicePort
	hasL4, routed bool
}

func planPorts(svc *service) portPlan {
	var p portPlan
	if len(svc.ports) == 0 {
		p.http, p.routed = true, true // a Service without ports: the http route as before
		return p
	}
	for _, port := range svc.ports {
		switch port.class() {
		case routeHTTP:
			p.http = true
		case routeAuto:
			p.http = true
			p.tcp = append(p.tcp, port)
		case routeTCP:
			p.tcp = append(p.tcp, port)
		case routeTLS:
			p.tls = append(p.tls, port)
		default:
			p.none = append(p.none, port)
		}
	}
	p.hasL4 = len(p.tcp)+len(p.tls) > 0
	p.routed = p.http || p.hasL4
	return p
}

// l4Destinations is the weighted pair for one port of a tcp or tls route: the same
// stage weights as the http routes, on the port the connection came in on.
func (r *release) l4Destinations(rt routing, host string, port uint32) []*networking.RouteDestination {
	sel := &networking.PortSelector{Number: port}
	if !rt.bySubset {
		return []*networking.RouteDestination{{Destination: &networking.Destination{Host: host, Port: sel}}}
	}
	return []*networking.RouteDestination{
		{Destination: &networking.Destination{Host: host, Subset: SubsetProduction, Port: sel}, Weight: int32(rt.w.Stage.ProductionWeight())},
		{Destination: &networking.Destination{Host: host, Subset: SubsetCanary, Port: sel}, Weight: int32(rt.w.Stage.CanaryWeight())},
	}
}

// l4Routes are the tcp and tls routes a Service's L4 ports need. sniHosts are the
// names a TLS client must send as SNI for a tls route to apply.
func (r *release) l4Routes(rt routing, plan portPlan, host string, sniHosts []string) ([]*networking.TCPRoute, []*networking.TLSRoute) {
	var tcp []*networking.TCPRoute
	var tls []*networking.TLSRoute
	for _, p := range plan.tcp {
		tcp = append(tcp, &networking.TCPRoute{
			Match: []*networking.L4MatchAttributes{{Port: p.number}},
			Route: r.l4Destinations(rt, host, p.number)})
	}
	for _, p := range plan.tls {
		tls = append(tls, &networking.TLSRoute{
			Match: []*networking.TLSMatchAttributes{{Port: p.number, SniHosts: sniHosts}},
			Route: r.l4Destinations(rt, host, p.number)})
	}
	return tcp, tls
}

// warnPorts says, once per Service, which of its ports the stage weights do not
// govern, and how traffic reaches the Service from outside the mesh.
func (r *release) warnPorts(rt routing, plan portPlan, sniHosts []string) {
	if r.warnedPorts == nil {
		r.warnedPorts = map[*service]bool{}
	}
	if r.warnedPorts[rt.svc] || !rt.w.canaryUp() {
		return
	}
	r.warnedPorts[rt.svc] = true
	for _, p := range plan.none {
		r.warnf("Service %s port %s: Istio does not proxy %s, so connections to it reach production and canary pods by pod count, not by the stage weights",
			rt.svc.name, p.describe(), p.protocol)
	}
	for _, p := range plan.tls {
		r.warnf("Service %s port %s carries TLS the mesh does not decrypt: the stage weights apply to connections whose SNI is one of %s; connections with another SNI, or none, reach production and canary pods by pod count",
			rt.svc.name, p.describe(), strings.Join(sniHosts, ", "))
	}
	if rt.w.live() && (len(rt.w.Match) > 0 || rt.w.Sticky != nil || rt.w.UserPercent != nil || rt.w.Mirror != nil) && plan.hasL4 {
		var l4 []string
		for _, p := range append(append([]servicePort{}, plan.tcp...), plan.tls...) {
			if p.class() != routeAuto {
				l4 = append(l4, p.describe())
			}
		}
		if len(l4) > 0 {
			r.warnf("Service %s ports %s are not HTTP: Deployment %s's match, sticky, userPercent and mirror settings are HTTP routing and do not apply there, only the stage weights do",
				rt.svc.name, strings.Join(l4, ", "), rt.w.name)
		}
	}
	if rt.svc.headless && plan.hasL4 {
		var l4 []string
		for _, p := range append(append([]servicePort{}, plan.tcp...), plan.tls...) {
			l4 = append(l4, p.describe())
		}
		r.warnf("Service %s is headless (clusterIP: None): clients connect to pod addresses directly, and Istio routes those connections to the pod they chose, so ports %s reach production and canary pods by pod count; only HTTP requests follow the stage weights",
			rt.svc.name, strings.Join(l4, ", "))
	}
	switch rt.svc.typ {
	case "LoadBalancer", "NodePort":
		r.warnf("Service %s is of type %s: connections through its node ports or load balancer go straight to production and canary pods by pod count; only traffic from the mesh and through Istio gateways follows the stage weights",
			rt.svc.name, rt.svc.typ)
	}
}

// sniNames are the names a TLS client of the Service may send as SNI, the way
// cluster DNS lets it dial the Service: its short name and, when the namespace is
// known, name.namespace, name.namespace.svc and the FQDN. Istio matches sniHosts
// literally (it resolves no short names there), and each must be one of the
// VirtualService's hosts.
func (r *release) sniNames(svc *service) []string {
	if svc.ns == "" || !plannedTLS(svc) {
		return []string{svc.name}
	}
	base := svc.name + "." + svc.ns
	return []string{svc.name, base, base + ".svc", base + ".svc." + r.clusterDomain()}
}

func plannedTLS(svc *service) bool { return len(planPorts(svc).tls) > 0 }
