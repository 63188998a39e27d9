// Package promtest runs a real Prometheus server for tests, scraping a small
// metrics server that serves Istio-shaped request series (istio_requests_total,
// istio_request_duration_milliseconds) with the rates, error rates and latencies a
// test sets.
package promtest
