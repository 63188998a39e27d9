package analysis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/helm-canary/helm-canary/internal/promtest"
)

// The checks' PromQL against a real Prometheus server scraping Istio-shaped
// series: one namespace per case, all in one window.
func TestChecksAgainstPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus server; not in -short mode")
	}
	m, err := promtest.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	good := promtest.Traffic{RPS: 20, LatencyMs: 40}
	cases := []struct {
		name             string
		prod, canary     promtest.Traffic
		noCanary         bool
		settings         map[string]any
		verdict          Status
		failed, inconcl  []string
		valueOf          string
		valueMin, valMax float64
	}{
		{name: "good", prod: good, canary: good, verdict: Pass, valueOf: CheckSuccessRate, valueMin: 99.99, valMax: 100},
		{name: "ambient", prod: good, canary: promtest.Traffic{RPS: 20, LatencyMs: 40, Reporter: "waypoint"}, verdict: Pass},
		{name: "errors", prod: good, canary: promtest.Traffic{RPS: 20, ErrorRate: 0.05, LatencyMs: 40}, verdict: Fail, failed: []string{CheckSuccessRate},
			valueOf: CheckSuccessRate, valueMin: 94.5, valMax: 95.5},
		{name: "slow", prod: good, canary: promtest.Traffic{RPS: 20, LatencyMs: 800}, verdict: Fail, failed: []string{CheckLatencyP99},
			valueOf: CheckLatencyP99, valueMin: 900, valMax: 1000},
		// Within the absolute thresholds, but worse than production.
		{name: "worse-than-production", prod: good, canary: promtest.Traffic{RPS: 20, ErrorRate: 0.008, LatencyMs: 200},
			settings: map[string]any{"relative": map[string]any{"errorRatePoints": 0.5, "latencyRatio": 1.5}}, verdict: Fail,
			failed: []string{CheckErrorRateDiff, CheckLatencyRatio}, valueOf: CheckLatencyRatio, valueMin: 2, valMax: 5},
		// The whole service has a bad day: judged against production, the canary is fine.
		{name: "bad-day", prod: promtest.Traffic{RPS: 20, ErrorRate: 0.03, LatencyMs: 40}, canary: promtest.Traffic{RPS: 20, ErrorRate: 0.03, LatencyMs: 40},
			settings: map[string]any{"successRate": 0, "relative": map[string]any{"errorRatePoints": 1}}, verdict: Pass,
			valueOf: CheckErrorRateDiff, valueMin: -1, valMax: 1},
		{name: "idle", prod: good, canary: promtest.Traffic{RPS: 0.2, ErrorRate: 0.5, LatencyMs: 4000}, verdict: Inconclusive,
			inconcl: []string{CheckRequests, CheckSuccessRate, CheckLatencyP99}},
		{name: "no-series", prod: good, noCanary: true, verdict: Inconclusive, inconcl: []string{CheckRequests, CheckSuccessRate, CheckLatencyP99}},
		{name: "idle-production", prod: promtest.Traffic{RPS: 0.1}, canary: good, settings: map[string]any{"relative": map[string]any{"latencyRatio": 2}},
			verdict: Inconclusive, inconcl: []string{CheckLatencyRatio}},
		{name: "custom", prod: good, canary: good, verdict: Fail, failed: []string{"rps-too-high"},
			settings: map[string]any{"checks": []any{
				map[string]any{"name": "rps", "min": 15, "max": 25, "query": `sum(rate(istio_requests_total{destination_workload_namespace="{{.Namespace}}",destination_workload="{{.Canary}}"}[{{.Interval}}]))`},
				map[string]any{"name": "rps-too-high", "max": 5, "query": `sum(rate(istio_requests_total{destination_workload_namespace="{{.Namespace}}",destination_workload="{{.Workload}}"}[{{.Interval}}]))`},
			}}, valueOf: "rps", valueMin: 15, valMax: 25},
	}
	for _, c := range cases {
		m.Set(c.name, "app", c.prod)
		if !c.noCanary {
			m.Set(c.name, "app-canary", c.canary)
		}
	}
	ctx := t.Context()
	prom, err := promtest.Start(ctx, m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()
	q, err := NewPrometheus(prom.URL, nil, prom.URL)
	if err != nil {
		t.Fatal(err)
	}
	window := 5 * time.Second
	if err := prom.WaitForWindow(ctx, window); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			layer := map[string]any{"interval": window.String()}
			s, err := Merge(layer, c.settings)
			if err != nil {
				t.Fatal(err)
			}
			a, err := s.Evaluate(ctx, q, []Target{{Namespace: c.name, Workload: "app", Canary: "app-canary", Service: "app"}}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if a.Verdict() != c.verdict {
				t.Errorf("verdict %s, want %s: %+v", a.Verdict(), c.verdict, a.Results)
			}
			if got := names(a.With(Fail)); strings.Join(got, ",") != strings.Join(c.failed, ",") {
				t.Errorf("failed %v, want %v: %+v", got, c.failed, a.Results)
			}
			if c.inconcl != nil {
				if got := names(a.With(Inconclusive)); strings.Join(got, ",") != strings.Join(c.inconcl, ",") {
					t.Errorf("inconclusive %v, want %v", got, c.inconcl)
				}
			}
			for _, r := range a.Results {
				if r.Check == c.valueOf && (r.Value == nil || *r.Value < c.valueMin || *r.Value > c.valMax) {
					t.Errorf("%s = %s, want %g..%g", r.Check, show(r.Value, "%g"), c.valueMin, c.valMax)
				}
				if r.Status == Fail && r.Detail == "" {
					t.Errorf("%s failed with no detail", r.Check)
				}
			}
		})
	}

	t.Run("environment errors", func(t *testing.T) {
		s, _ := Merge(map[string]any{"interval": "5s"})
		target := []Target{{Namespace: "good", Workload: "app", Canary: "app-canary"}}
		var env *EnvError
		// Several series where a check needs one value.
		s2, _ := Merge(map[string]any{"interval": "5s", "checks": []any{map[string]any{"name": "many", "max": 1, "query": "istio_requests_total"}}})
		if _, err := s2.Evaluate(ctx, q, target, time.Now()); !errors.As(err, &env) || !strings.Contains(err.Error(), "aggregate it") {
			t.Errorf("several series: %v", err)
		}
		s3, _ := Merge(map[string]any{"interval": "5s", "checks": []any{map[string]any{"name": "bad", "max": 1, "query": "sum(rate(x[5s])"}}})
		if _, err := s3.Evaluate(ctx, q, target, time.Now()); !errors.As(err, &env) || !strings.Contains(err.Error(), "refused the query") {
			t.Errorf("bad PromQL: %v", err)
		}
		down, _ := NewPrometheus("http://127.0.0.1:1", nil, "http://127.0.0.1:1")
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := s.Evaluate(cctx, down, target, time.Now()); !errors.As(err, &env) {
			t.Errorf("unreachable: %v", err)
		}
	})
}

func names(rs []Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Check)
	}
	return out
}
