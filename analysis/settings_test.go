package analysis

import (
	"strings"
	"testing"
	"time"
)

func TestParseSteps(t *testing.T) {
	got, err := ParseSteps("10, 25,pause,50,100")
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "10,25,pause,50,100" || !got[2].Pause || got[4].Weight != 100 {
		t.Fatalf("got %v", got)
	}
	for in, want := range map[string]string{
		"":             "neither",
		"pause,100":    "first step must be a weight",
		"10,50":        "last weight must be 100",
		"50,10,100":    "must rise",
		"0,100":        "1..100",
		"10,101":       "1..100",
		"10,wait,100":  `"wait" is neither`,
		"10,10,100":    "must rise",
		"10,100,pause": "",
	} {
		_, err := ParseSteps(in)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}

func TestMergeLayersAndDefaults(t *testing.T) {
	values, err := Parse([]byte("canary:\n  analysis:\n    steps: 10,50,100\n    interval: 1m\n    relative:\n      latencyRatio: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	file, _ := Parse([]byte("interval: 30s\nrelative:\n  errorRatePoints: 1\nsteps: [5, pause, 100]\n"))
	s, err := Merge(values, file, map[string]any{"prometheus": map[string]any{"url": "http://prom:9090"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Steps.String() != "5,pause,100" || time.Duration(s.Interval) != 30*time.Second || s.Prometheus.URL != "http://prom:9090" {
		t.Fatalf("later layers win: %+v", s)
	}
	if *s.Relative.LatencyRatio != 2 || *s.Relative.ErrorRatePoints != 1 {
		t.Fatalf("maps merge key by key: %+v", s.Relative)
	}
	if *s.SuccessRate != 99 || *s.LatencyP99 != 500 || s.FailureLimit != 1 || s.Inconclusive != "hold" || *s.MinRequests != 10 {
		t.Fatalf("defaults: %+v", s)
	}
	if s.Interval.PromQL() != "30s" || Duration(2*time.Minute).PromQL() != "2m" || Duration(90*time.Second).PromQL() != "90s" {
		t.Fatal("PromQL durations")
	}
}

func TestMergeRefusesBadSettings(t *testing.T) {
	for want, layer := range map[string]map[string]any{
		"known keys":                   {"stepz": "10,100"},
		"failureLimit -1":              {"failureLimit": -1},
		`inconclusive "pass"`:          {"inconclusive": "pass"},
		"give it min, max or both":     {"checks": []any{map[string]any{"name": "x", "query": "up"}}},
		"used twice":                   {"checks": []any{map[string]any{"name": "success-rate", "query": "up", "min": 1}}},
		"want an http":                 {"notify": "slack"},
		"NAMESPACE/NAME:PORT":          {"prometheus": map[string]any{"service": "prometheus:9090"}},
		"url and service both":         {"prometheus": map[string]any{"service": "m/p:80", "url": "http://p"}},
		"when \"later\"":               {"webhooks": []any{map[string]any{"name": "x", "url": "http://x", "when": "later"}}},
		"interval 100ms":               {"interval": "100ms"},
		"successRate 120":              {"successRate": 120},
		"a query may only use":         {"checks": []any{map[string]any{"name": "x", "query": `{{printf "%s" .Namespace}}`, "max": 1}}},
		"a query may only use {{.Name": {"checks": []any{map[string]any{"name": "x", "query": `{{if .Canary}}up{{end}}`, "max": 1}}},
	} {
		_, err := Merge(layer)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want %q", layer, err, want)
		}
	}
}

// Nothing from values becomes code: only Target's fields pass, as plain
// substitutions.
func TestQueryTemplatesAreDataOnly(t *testing.T) {
	refused := []string{
		`{{.Namespace | printf "%s"}}`, `{{call .X}}`, `{{$x := 1}}`, `{{range .Namespace}}{{end}}`,
		`{{template "t"}}`, `{{.Namespace.Len}}`, `{{.Secret}}`, `{{index . "a"}}`, `{{len .Canary}}`, `{{/* c */}}{{block "b" .}}{{end}}`,
		`{{define "x"}}up{{end}}{{template "x"}}`, `{{define "x"}}{{printf "a"}}{{end}}up`, `{{.}}`,
	}
	for _, q := range refused {
		if _, err := parseQuery("c", q); err == nil {
			t.Errorf("%s: accepted", q)
		}
	}
	c := Check{Name: "c", Query: `rate(x{ns="{{.Namespace}}",w="{{.Canary}}",p="{{.Workload}}",s="{{.Service}}"}[{{.Interval}}])`}
	got, err := c.Render(Target{Namespace: "shop", Workload: "cart", Canary: "cart-canary", Service: "cart-svc", Interval: "2m"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `rate(x{ns="shop",w="cart-canary",p="cart",s="cart-svc"}[2m])`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestBuiltinQueries(t *testing.T) {
	q := SuccessRateQuery("shop", "cart-canary", "1m")
	for _, want := range []string{`reporter=~"destination|waypoint"`, `destination_workload="cart-canary"`, `destination_workload_namespace="shop"`, `response_code!~"5.."`, `[1m]`} {
		if !strings.Contains(q, want) {
			t.Errorf("%s lacks %s", q, want)
		}
	}
	if q := LatencyP99Query("shop", "cart-canary", "1m"); !strings.HasPrefix(q, "histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{") {
		t.Errorf("p99: %s", q)
	}
}
