package analysis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Status is a check's verdict.
type Status string

const (
	Pass         Status = "pass"
	Fail         Status = "fail"
	Inconclusive Status = "inconclusive"
)

// Result is one check of one workload.
type Result struct {
	Workload string   `json:"workload,omitempty"`
	Check    string   `json:"check"`
	Status   Status   `json:"status"`
	Value    *float64 `json:"value,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	// Detail says in words what was measured against what.
	Detail string `json:"detail"`
	Query  string `json:"query,omitempty"`
}

// Querier runs an instant PromQL query that must yield one value (ok false: no
// data, or NaN). Errors are the environment's: Prometheus unreachable or refusing.
type Querier interface {
	Query(ctx context.Context, query string, at time.Time) (value float64, ok bool, err error)
}

// EnvError is a failure to reach or query Prometheus: the rollout holds.
type EnvError struct{ Err error }

func (e *EnvError) Error() string { return e.Err.Error() }
func (e *EnvError) Unwrap() error { return e.Err }

// Prometheus queries a Prometheus server's HTTP API with its own client.
type Prometheus struct {
	api promv1.API
	// Where names the server in errors.
	Where string
}

// NewPrometheus is a Querier for the server at address, its requests sent
// through rt (nil: http.DefaultTransport).
func NewPrometheus(address string, rt http.RoundTripper, where string) (*Prometheus, error) {
	if rt == nil {
		rt = http.DefaultTransport
	}
	c, err := api.NewClient(api.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", where, err)
	}
	return &Prometheus{api: promv1.NewAPI(c), Where: where}, nil
}

// Query implements Querier.
func (p *Prometheus) Query(ctx context.Context, query string, at time.Time) (float64, bool, error) {
	v, _, err := p.api.Query(ctx, query, at)
	if err != nil {
		var perr *promv1.Error
		if errors.As(err, &perr) && perr.Type == promv1.ErrBadData {
			return 0, false, &EnvError{fmt.Errorf("prometheus %s refused the query %s: %s", p.Where, query, perr.Msg)}
		}
		return 0, false, &EnvError{fmt.Errorf("prometheus %s: %w", p.Where, err)}
	}
	var f float64
	switch r := v.(type) {
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, false, nil
		case 1:
			f = float64(r[0].Value)
		default:
			return 0, false, &EnvError{fmt.Errorf("the query %s returns %d series; a check needs one value: aggregate it (sum(...), max(...))", query, len(r))}
		}
	case *model.Scalar:
		f = float64(r.Value)
	default:
		return 0, false, &EnvError{fmt.Errorf("the query %s returns a %s; a check needs one value", query, v.Type())}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, nil
	}
	return f, true, nil
}

// Analysis is one evaluation of every check for a set of workloads.
type Analysis struct {
	Results []Result `json:"results"`
}

// Verdict is the worst status: fail over inconclusive over pass.
func (a Analysis) Verdict() Status {
	v := Pass
	for _, r := range a.Results {
		if r.Status == Fail {
			return Fail
		}
		if r.Status == Inconclusive {
			v = Inconclusive
		}
	}
	return v
}

// With lists the failed (or, with status Inconclusive, the inconclusive) results.
func (a Analysis) With(s Status) []Result {
	var out []Result
	for _, r := range a.Results {
		if r.Status == s {
			out = append(out, r)
		}
	}
	return out
}

// Evaluate runs every check for each target at time at. An error is the
// environment's (see EnvError): nothing is decided.
func (s Settings) Evaluate(ctx context.Context, q Querier, targets []Target, at time.Time) (Analysis, error) {
	var a Analysis
	for _, t := range targets {
		t.Interval = s.Interval.PromQL()
		rs, err := s.evaluate(ctx, q, t, at)
		if err != nil {
			return Analysis{}, err
		}
		a.Results = append(a.Results, rs...)
	}
	return a, nil
}

func (s Settings) evaluate(ctx context.Context, q Querier, t Target, at time.Time) ([]Result, error) {
	w := t.Interval
	value := func(query string) (*float64, error) {
		v, ok, err := q.Query(ctx, query, at)
		if err != nil || !ok {
			return nil, err
		}
		return &v, nil
	}
	var out []Result
	reqQ := RequestsQuery(t.Namespace, t.Canary, w)
	canaryReqs, err := value(reqQ)
	if err != nil {
		return nil, err
	}
	enough := canaryReqs != nil && *canaryReqs >= *s.MinRequests
	req := Result{Workload: t.Workload, Check: CheckRequests, Value: canaryReqs, Min: s.MinRequests, Query: reqQ, Status: Pass,
		Detail: fmt.Sprintf("%s canary requests in %s (at least %g needed)", show(canaryReqs, "%.0f"), w, *s.MinRequests)}
	if !enough {
		req.Status = Inconclusive
		req.Detail = fmt.Sprintf("too little traffic: %s canary requests in %s, %g needed for a verdict", show(canaryReqs, "%.0f"), w, *s.MinRequests)
	}
	out = append(out, req)

	// judge turns a measured value into a result; without enough traffic every
	// check is inconclusive, never a pass.
	judge := func(name, query string, v, min, max *float64, detail string) Result {
		r := Result{Workload: t.Workload, Check: name, Value: v, Min: min, Max: max, Query: query, Detail: detail}
		switch {
		case !enough:
			r.Status = Inconclusive
			r.Detail += " (inconclusive: too little traffic)"
		case v == nil:
			r.Status = Inconclusive
			r.Detail += " (inconclusive: no data)"
		case min != nil && *v < *min, max != nil && *v > *max:
			r.Status = Fail
		default:
			r.Status = Pass
		}
		return r
	}

	var canarySR, canaryP99 *float64
	needSR := *s.SuccessRate > 0 || s.Relative.ErrorRatePoints != nil
	needP99 := *s.LatencyP99 > 0 || s.Relative.LatencyRatio != nil
	srQ, p99Q := SuccessRateQuery(t.Namespace, t.Canary, w), LatencyP99Query(t.Namespace, t.Canary, w)
	if needSR {
		if canarySR, err = value(srQ); err != nil {
			return nil, err
		}
	}
	if needP99 {
		if canaryP99, err = value(p99Q); err != nil {
			return nil, err
		}
	}
	if *s.SuccessRate > 0 {
		out = append(out, judge(CheckSuccessRate, srQ, canarySR, s.SuccessRate, nil,
			fmt.Sprintf("success rate %s%% (min %g%%)", show(canarySR, "%.2f"), *s.SuccessRate)))
	}
	if *s.LatencyP99 > 0 {
		out = append(out, judge(CheckLatencyP99, p99Q, canaryP99, nil, s.LatencyP99,
			fmt.Sprintf("p99 latency %s ms (max %g ms)", show(canaryP99, "%.0f"), *s.LatencyP99)))
	}

	if s.Relative.ErrorRatePoints != nil || s.Relative.LatencyRatio != nil {
		// Production in the same window: its own traffic must be enough too.
		prodReqs, err := value(RequestsQuery(t.Namespace, t.Workload, w))
		if err != nil {
			return nil, err
		}
		prodEnough := prodReqs != nil && *prodReqs >= *s.MinRequests
		relative := func(name, query string, v *float64, max *float64, detail string) Result {
			r := judge(name, query, v, nil, max, detail)
			if r.Status != Inconclusive && !prodEnough {
				r.Status = Inconclusive
				r.Detail += fmt.Sprintf(" (inconclusive: %s production requests in %s)", show(prodReqs, "%.0f"), w)
			}
			return r
		}
		if p := s.Relative.ErrorRatePoints; p != nil {
			prodQ := SuccessRateQuery(t.Namespace, t.Workload, w)
			prodSR, err := value(prodQ)
			if err != nil {
				return nil, err
			}
			var diff *float64
			if canarySR != nil && prodSR != nil {
				diff = ptr((100 - *canarySR) - (100 - *prodSR))
			}
			out = append(out, relative(CheckErrorRateDiff, srQ+"\n"+prodQ, diff, p,
				fmt.Sprintf("error rate %s%% vs production's %s%%: %s points over (max %g)", showErr(canarySR), showErr(prodSR), show(diff, "%.2f"), *p)))
		}
		if r := s.Relative.LatencyRatio; r != nil {
			prodQ := LatencyP99Query(t.Namespace, t.Workload, w)
			prodP99, err := value(prodQ)
			if err != nil {
				return nil, err
			}
			var ratio *float64
			if canaryP99 != nil && prodP99 != nil && *prodP99 > 0 {
				ratio = ptr(*canaryP99 / *prodP99)
			}
			out = append(out, relative(CheckLatencyRatio, p99Q+"\n"+prodQ, ratio, r,
				fmt.Sprintf("p99 latency %s ms vs production's %s ms: %s times (max %g)", show(canaryP99, "%.0f"), show(prodP99, "%.0f"), show(ratio, "%.2f"), *r)))
		}
	}

	for _, c := range s.Checks {
		query, err := c.Render(t)
		if err != nil {
			return nil, err
		}
		v, err := value(query)
		if err != nil {
			return nil, err
		}
		out = append(out, judge(c.Name, query, v, c.Min, c.Max, fmt.Sprintf("%s = %s%s", c.Name, show(v, "%g"), bounds(c.Min, c.Max))))
	}
	return out, nil
}

func show(v *float64, format string) string {
	if v == nil {
		return "no data"
	}
	return fmt.Sprintf(format, *v)
}

func showErr(sr *float64) string {
	if sr == nil {
		return "no data"
	}
	return fmt.Sprintf("%.2f", 100-*sr)
}

func bounds(min, max *float64) string {
	var parts []string
	if min != nil {
		parts = append(parts, fmt.Sprintf("min %g", *min))
	}
	if max != nil {
		parts = append(parts, fmt.Sprintf("max %g", *max))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// NewPrometheusURL is a Querier for a Prometheus URL, with a CA file to verify
// its certificate and a bearer token file (read at every request, so a rotated
// token is picked up).
func NewPrometheusURL(p PrometheusSettings) (*Prometheus, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("prometheus CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("prometheus CA file %s: no PEM certificate in it", p.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = tr
	if p.BearerTokenFile != "" {
		if _, err := os.Stat(p.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("prometheus bearer token file: %w", err)
		}
		rt = bearer{file: p.BearerTokenFile, next: tr}
	}
	return NewPrometheus(p.URL, rt, p.URL)
}

type bearer struct {
	file string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	token, err := os.ReadFile(b.file)
	if err != nil {
		return nil, fmt.Errorf("prometheus bearer token file: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	return b.next.RoundTrip(r)
}
