// Package routesim answers, for a manifest, which subset serves a request: it applies
// Istio's HTTP routing rules of the manifest's VirtualServices (first matching route
// wins; header, URI, method and query matches with exact, prefix and RE2 regex;
// weights as probabilities) after the gateway's user tagging, computed exactly as the
// gateway filter helm-canary renders does.
package routesim
