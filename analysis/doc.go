// Package analysis decides, from Prometheus metrics, whether a canary may move on:
// the rollout's settings (steps, interval, checks, limits, webhooks), the checks'
// PromQL, and their verdicts (pass, fail or inconclusive) with the measured values.
//
// It is pure apart from HTTP: it reaches Prometheus through a Querier (Prometheus's
// own API client over any http.RoundTripper, so release/ can route it through the
// Kubernetes API server's service proxy) and calls webhooks; it never touches Helm
// or the cluster. Nothing from values becomes code: custom queries are templates
// whose only actions are the data fields of Target, checked before use.
package analysis
