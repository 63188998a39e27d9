package canaried

import (
	"strings"

	"github.com/helm-canary/helm-canary/renderer"
)

// HostMatches reports whether an Istio host names a Service of namespace in a
// cluster whose DNS domain is domain ("" for cluster.local): its short name, or
// name.namespace[.svc[.<domain>]]. With the namespace unknown (""), only the short
// name does. It is the renderer's own matcher, so what the renderer routes and what
// status and the route simulator read back agree.
func HostMatches(host, service, namespace, domain string) bool {
	return renderer.HostMatches(host, service, namespace, domain)
}

// ServiceHost splits a host that names a cluster Service (a short name, or
// name.namespace.svc or name.namespace.svc.<domain>, domain "" for cluster.local)
// into the Service's name and namespace ("" when the host does not say). ok is
// false for an external domain or a wildcard.
func ServiceHost(host, domain string) (service, namespace string, ok bool) {
	if strings.Contains(host, "*") {
		return "", "", false
	}
	if !strings.Contains(host, ".") {
		return host, "", host != ""
	}
	parts := strings.SplitN(host, ".", 3)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	if !HostMatches(host, parts[0], parts[1], domain) {
		return "", "", false
	}
	return parts[0], parts[1], true
}
