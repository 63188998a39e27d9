package canaried

import (
	"fmt"
	"strings"

	"github.com/helm-canary/helm-canary/renderer"
)

// PortSplit is how the traffic to one port of a workload's Service is split: by
// the route Istio applies to that port's protocol, or by pod count when none does.
type PortSplit struct {
	Port int    `json:"port"`
	Name string `json:"name,omitempty"`
	// Protocol is Istio's for the port (HTTP, TCP, TLS, Redis, ...), "detected" when
	// Istio sniffs it.
	Protocol string `json:"protocol"`
	// Route is the VirtualService section that applies: http, tcp, tls, or
	// "http+tcp" for a sniffed port; empty when none does.
	Route string `json:"route,omitempty"`
	// Weights is the split the route gives; nil when no route splits the port and
	// connections reach production and canary pods by pod count.
	Weights *Split `json:"weights,omitempty"`
	// SNI lists the server names a tls route matches: other TLS connections go by
	// pod count.
	SNI  []string `json:"sni,omitempty"`
	Note string   `json:"note,omitempty"`
}

func (p PortSplit) String() string {
	label := fmt.Sprint(p.Port)
	if p.Name != "" {
		label += "/" + p.Name
	}
	s := fmt.Sprintf("%s %s: ", label, p.Protocol)
	if p.Weights == nil {
		s += "by pod count"
	} else {
		s += fmt.Sprintf("%s (%s route)", p.Weights, p.Route)
	}
	if p.Note != "" {
		s += "; " + p.Note
	}
	return s
}

// Ports is the per-port split of the workload's Service, as the manifest routes it.
func (m *Manifest) Ports(w Workload) []PortSplit {
	svc := m.Get("Service", w.Service)
	if svc == nil {
		return nil
	}
	var vss []map[string]any
	for _, vs := range m.Of("VirtualService") {
		vss = append(vss, vs.Fields)
	}
	return PortSplits(svc.Fields, vss, w.Service, m.NamespaceOf(*svc), m.Domain)
}

// PortSplits reads, for each port of a Service (decoded), the split the first of
// the VirtualServices (decoded, from a manifest or live) that hosts it gives that
// port. namespace is the Service's ("" when unknown), domain the cluster's ("" for
// cluster.local).
func PortSplits(service map[string]any, virtualServices []map[string]any, name, namespace, domain string) []PortSplit {
	var vs map[string]any
	for _, v := range virtualServices {
		if Hosts(v, name, namespace, domain) {
			vs = v
			break
		}
	}
	ports, _ := Dig(service, "spec", "ports").([]any)
	var out []PortSplit
	for _, p := range ports {
		number, _ := toInt(Dig(p, "port"))
		ps := PortSplit{Port: number, Name: str(Dig(p, "name"))}
		proto := renderer.IstioProtocol(ps.Name, str(Dig(p, "appProtocol")), str(Dig(p, "protocol")), uint32(number))
		ps.Protocol = proto
		if proto == "" {
			ps.Protocol = "detected"
		}
		class := renderer.RouteClass(proto)
		switch {
		case class == "none":
			ps.Note = "Istio does not proxy " + proto
		case vs == nil:
			ps.Note = "no VirtualService hosts " + name
		case class == "http":
			if s, ok := TrafficSplit(vs, name, namespace, domain); ok {
				ps.Route, ps.Weights = "http", &s
			}
		case class == "tcp":
			if s, _, ok := portRoute(vs, "tcp", number, name, namespace, domain); ok {
				ps.Route, ps.Weights = "tcp", &s
			} else {
				ps.Note = "no tcp route for the port"
			}
		case class == "tls":
			if s, sni, ok := portRoute(vs, "tls", number, name, namespace, domain); ok {
				ps.Route, ps.Weights, ps.SNI = "tls", &s, sni
				ps.Note = "TLS connections with another SNI go by pod count"
			} else {
				ps.Note = "no tls route for the port"
			}
		default: // sniffed: HTTP requests take the http routes, other connections the tcp route
			h, hok := TrafficSplit(vs, name, namespace, domain)
			t, _, tok := portRoute(vs, "tcp", number, name, namespace, domain)
			switch {
			case hok && tok:
				ps.Route, ps.Weights = "http+tcp", &h
				if h != t {
					ps.Note = fmt.Sprintf("connections Istio does not detect as HTTP: %s", t)
				}
			case hok:
				ps.Route, ps.Weights = "http", &h
				ps.Note = "connections Istio does not detect as HTTP go by pod count"
			case tok:
				ps.Route, ps.Weights = "tcp", &t
				ps.Note = "HTTP requests go by pod count"
			}
		}
		out = append(out, ps)
	}
	return out
}

// portRoute is the split of the first route of a tcp or tls section that applies to
// a port (one of its matches names the port or none), when it reaches the service;
// sni is what that tls route's matches require.
func portRoute(vs map[string]any, section string, port int, name, namespace, domain string) (Split, []string, bool) {
	routes, _ := Dig(vs, "spec", section).([]any)
	for _, r := range routes {
		matches, _ := Dig(r, "match").([]any)
		applies := len(matches) == 0
		var sni []string
		for _, m := range matches {
			p, ok := toInt(Dig(m, "port"))
			if !ok || p == 0 || p == port {
				applies = true
				hosts, _ := Dig(m, "sniHosts").([]any)
				for _, h := range hosts {
					sni = append(sni, str(h))
				}
			}
		}
		if !applies {
			continue
		}
		dests, _ := Dig(r, "route").([]any)
		s, ok := splitOf(dests, name, namespace, domain)
		return s, sni, ok
	}
	return Split{}, nil, false
}

// FormatPorts prints per-port splits on one line.
func FormatPorts(ports []PortSplit) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}
