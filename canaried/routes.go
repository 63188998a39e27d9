package canaried

import (
	"fmt"
	"strings"

	"github.com/helm-canary/helm-canary/renderer"
)

// Split is a production/canary pair: traffic weights, or replica counts.
type Split struct {
	Production int `json:"production"`
	Canary     int `json:"canary"`
}

func (s Split) String() string { return fmt.Sprintf("%d/%d", s.Production, s.Canary) }

// FormatSplits prints splits as "90/10, 100/0".
func FormatSplits(splits []Split) string {
	parts := make([]string, len(splits))
	for i, s := range splits {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}

// Routes lists, for every http, tcp and tls route of a VirtualService (decoded,
// from a manifest or live) that reaches the service through its production or
// canary subset or its bare host, the traffic split, in that order. namespace is the
// service's ("" when unknown), domain the cluster's ("" for cluster.local).
func Routes(virtualService map[string]any, service, namespace, domain string) []Split {
	var out []Split
	for _, section := range []string{"http", "tcp", "tls"} {
		routes, _ := Dig(virtualService, "spec", section).([]any)
		for _, r := range routes {
			dests, _ := Dig(r, "route").([]any)
			if split, ok := splitOf(dests, service, namespace, domain); ok {
				out = append(out, split)
			}
		}
	}
	return out
}

// splitOf reads the production/canary split of one route's destinations.
func splitOf(dests []any, service, namespace, domain string) (Split, bool) {
	var split Split
	relevant := false
	for _, d := range dests {
		if !HostMatches(str(Dig(d, "destination", "host")), service, namespace, domain) {
			continue
		}
		weight := 100
		if len(dests) > 1 {
			weight, _ = toInt(Dig(d, "weight"))
		}
		switch str(Dig(d, "destination", "subset")) {
		case renderer.SubsetCanary:
			split.Canary, relevant = weight, true
		case renderer.SubsetProduction, "":
			split.Production, relevant = weight, true
		}
	}
	return split, relevant
}

// Hosts reports whether one of a VirtualService's hosts names the service.
func Hosts(virtualService map[string]any, service, namespace, domain string) bool {
	hosts, _ := Dig(virtualService, "spec", "hosts").([]any)
	for _, h := range hosts {
		if HostMatches(str(h), service, namespace, domain) {
			return true
		}
	}
	return false
}

// TrafficSplit is the split a VirtualService gives the service's own traffic: its
// last http route that reaches the service (the renderer puts match, sticky and
// mirror routes first, the weighted default last), or for a Service with no HTTP
// port its first tcp or tls route (the renderer gives them the same weights). ok is
// false for a VirtualService that does not host the service or never routes to it.
func TrafficSplit(virtualService map[string]any, service, namespace, domain string) (Split, bool) {
	if !Hosts(virtualService, service, namespace, domain) {
		return Split{}, false
	}
	var last *Split
	routes, _ := Dig(virtualService, "spec", "http").([]any)
	for _, r := range routes {
		dests, _ := Dig(r, "route").([]any)
		if s, ok := splitOf(dests, service, namespace, domain); ok {
			last = &s
		}
	}
	if last != nil {
		return *last, true
	}
	for _, section := range []string{"tcp", "tls"} {
		routes, _ := Dig(virtualService, "spec", section).([]any)
		for _, r := range routes {
			dests, _ := Dig(r, "route").([]any)
			if s, ok := splitOf(dests, service, namespace, domain); ok {
				return s, true
			}
		}
	}
	return Split{}, false
}

// Weights is the split of the workload's traffic the manifest says: that of the
// first VirtualService hosting its Service, or all on production.
func (m *Manifest) Weights(w Workload) Split {
	for _, vs := range m.Of("VirtualService") {
		if s, ok := TrafficSplit(vs.Fields, w.Service, m.NamespaceOf(vs), m.Domain); ok {
			return s
		}
	}
	return Split{Production: 100}
}
