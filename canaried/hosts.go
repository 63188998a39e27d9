package canaried

import (
	"strings"

	"github.com/helm-canary/helm-canary/renderer"
)

// HostMatches reports whether an Istio host names a Service (in namespace, "" for
// any): the renderer's own matcher, so what the renderer routes and what is read
// back agree.
func HostMatches(host, service, namespace string) bool {
	return service != "" && renderer.HostMatches(host, service, namespace)
}

// ServiceHost splits a host that names a cluster Service (a short name, or
// name.namespace.svc...) into the Service's name and namespace ("" when the host
// does not say). ok is false for an external domain or a wildcard.
func ServiceHost(host string) (service, namespace string, ok bool) {
	if strings.Contains(host, "*") {
		return "", "", false
	}
	if !strings.Contains(host, ".") {
		return host, "", host != ""
	}
	if !strings.Contains(host, ".svc") {
		return "", "", false
	}
	parts := strings.Split(host, ".")
	return parts[0], parts[1], true
}
