package analysis

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Settings are a rollout's settings: the values' canary.analysis block, an
// --analysis file over it, and command-line flags over both (see Merge).
type Settings struct {
	// Steps are the canary weights to walk, with pauses: "10,25,pause,50,100".
	Steps Steps `json:"steps,omitempty"`
	// Interval is how long each step runs before its checks, and their window.
	Interval Duration `json:"interval,omitempty"`
	// FailureLimit is how many failed analyses in a row at one step roll back.
	FailureLimit int `json:"failureLimit,omitempty"`
	// MinRequests: below this many canary requests in the window every check is
	// inconclusive, never a pass.
	MinRequests *float64 `json:"minRequests,omitempty"`
	// Inconclusive is what an inconclusive analysis does: "hold" (check again
	// after another interval, InconclusiveLimit times, then stop without
	// promoting) or "fail" (it counts as a failure).
	Inconclusive      string `json:"inconclusive,omitempty"`
	InconclusiveLimit int    `json:"inconclusiveLimit,omitempty"`
	// SuccessRate is the canary's minimum request success rate, in percent (0: no check).
	SuccessRate *float64 `json:"successRate,omitempty"`
	// LatencyP99 is the canary's maximum p99 latency, in milliseconds (0: no check).
	LatencyP99 *float64 `json:"latencyP99,omitempty"`
	// Relative compares the canary with production in the same window.
	Relative Relative `json:"relative,omitempty"`
	// Checks are custom PromQL checks.
	Checks []Check `json:"checks,omitempty"`
	// Webhooks are called before the rollout and at each step.
	Webhooks []Webhook `json:"webhooks,omitempty"`
	// Notify receives a JSON event at each step, on promotion and on rollback.
	Notify string `json:"notify,omitempty"`
	// Prometheus says where the metrics are.
	Prometheus PrometheusSettings `json:"prometheus,omitempty"`
}

// Relative bounds the canary by production.
type Relative struct {
	// ErrorRatePoints: the canary's error rate (percent) may exceed production's
	// by at most this many points.
	ErrorRatePoints *float64 `json:"errorRatePoints,omitempty"`
	// LatencyRatio: the canary's p99 latency may be at most this many times production's.
	LatencyRatio *float64 `json:"latencyRatio,omitempty"`
}

// Check is a custom PromQL check. Query is a template over Target's fields
// ({{.Namespace}}, {{.Workload}}, {{.Canary}}, {{.Service}}, {{.Interval}}) and
// must return one value.
type Check struct {
	Name  string   `json:"name"`
	Query string   `json:"query"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// Webhook is an HTTP POST that must answer 2xx: before the rollout
// (When "pre-rollout") or at each step after the checks pass (When "step", the default).
type Webhook struct {
	Name    string   `json:"name"`
	URL     string   `json:"url"`
	When    string   `json:"when,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
}

// PrometheusSettings: Prometheus is reached by URL, or through the API server's service proxy
// (Service "NAMESPACE/NAME:PORT").
type PrometheusSettings struct {
	URL             string `json:"url,omitempty"`
	Service         string `json:"service,omitempty"`
	BearerTokenFile string `json:"bearerTokenFile,omitempty"`
	CAFile          string `json:"caFile,omitempty"`
}

// String says where the metrics are read, for progress lines.
func (p PrometheusSettings) String() string {
	switch {
	case p.URL != "":
		return p.URL
	case p.Service != "":
		return "service " + p.Service + " (through the API server's proxy)"
	}
	return "nowhere (no Prometheus set)"
}

// Defaults, as Flagger's built-ins: success rate >= 99%, p99 <= 500 ms.
const (
	DefaultSteps             = "10,25,50,100"
	DefaultInterval          = 2 * time.Minute
	DefaultSuccessRate       = 99.0
	DefaultLatencyP99        = 500.0
	DefaultMinRequests       = 10.0
	DefaultInconclusiveLimit = 3
)

// Parse reads a settings document (YAML or JSON), refusing unknown keys.
func Parse(data []byte) (map[string]any, error) {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("analysis settings: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	// A file may hold the values' shape (canary: analysis:) or the block itself.
	if c, ok := m["canary"].(map[string]any); ok && len(m) == 1 {
		if a, ok := c["analysis"].(map[string]any); ok {
			m = a
		}
	}
	return m, nil
}

// Merge lays each layer over the ones before it (maps merge key by key, anything
// else is replaced) and returns the settings with defaults filled in, validated.
func Merge(layers ...map[string]any) (Settings, error) {
	merged := map[string]any{}
	for _, l := range layers {
		merged = mergeMaps(merged, l)
	}
	data, err := json.Marshal(merged)
	if err != nil {
		return Settings{}, err
	}
	var s Settings
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return Settings{}, fmt.Errorf("canary.analysis: %w (known keys: steps, interval, failureLimit, minRequests, inconclusive, inconclusiveLimit, successRate, latencyP99, relative, checks, webhooks, notify, prometheus)", err)
	}
	s.defaults()
	return s, s.Validate()
}

func mergeMaps(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if om, ok := v.(map[string]any); ok {
			if bm, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func (s *Settings) defaults() {
	if s.Steps == nil {
		s.Steps, _ = ParseSteps(DefaultSteps)
	}
	if s.Interval == 0 {
		s.Interval = Duration(DefaultInterval)
	}
	if s.FailureLimit == 0 {
		s.FailureLimit = 1
	}
	if s.MinRequests == nil {
		s.MinRequests = ptr(DefaultMinRequests)
	}
	if s.Inconclusive == "" {
		s.Inconclusive = "hold"
	}
	if s.InconclusiveLimit == 0 {
		s.InconclusiveLimit = DefaultInconclusiveLimit
	}
	if s.SuccessRate == nil {
		s.SuccessRate = ptr(DefaultSuccessRate)
	}
	if s.LatencyP99 == nil {
		s.LatencyP99 = ptr(DefaultLatencyP99)
	}
	for i := range s.Webhooks {
		if s.Webhooks[i].When == "" {
			s.Webhooks[i].When = "step"
		}
		if s.Webhooks[i].Timeout == 0 {
			s.Webhooks[i].Timeout = Duration(30 * time.Second)
		}
	}
}

func ptr[T any](v T) *T { return &v }

var checkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Validate says what is wrong with settings, naming the key and the fix.
func (s Settings) Validate() error {
	if err := s.Steps.validate(); err != nil {
		return err
	}
	if s.Interval < Duration(time.Second) {
		return fmt.Errorf("canary.analysis.interval %s: must be at least 1s (it is also the checks' window)", s.Interval)
	}
	if s.FailureLimit < 1 {
		return fmt.Errorf("canary.analysis.failureLimit %d: must be 1 or more", s.FailureLimit)
	}
	if s.InconclusiveLimit < 1 {
		return fmt.Errorf("canary.analysis.inconclusiveLimit %d: must be 1 or more", s.InconclusiveLimit)
	}
	if s.Inconclusive != "hold" && s.Inconclusive != "fail" {
		return fmt.Errorf("canary.analysis.inconclusive %q: use hold or fail", s.Inconclusive)
	}
	for name, v := range map[string]*float64{"minRequests": s.MinRequests, "successRate": s.SuccessRate, "latencyP99": s.LatencyP99,
		"relative.errorRatePoints": s.Relative.ErrorRatePoints, "relative.latencyRatio": s.Relative.LatencyRatio} {
		if v != nil && *v < 0 {
			return fmt.Errorf("canary.analysis.%s %g: must be 0 or more", name, *v)
		}
	}
	if *s.SuccessRate > 100 {
		return fmt.Errorf("canary.analysis.successRate %g: a percentage, 0..100", *s.SuccessRate)
	}
	seen := map[string]bool{}
	for i, c := range s.Checks {
		if !checkName.MatchString(c.Name) {
			return fmt.Errorf("canary.analysis.checks[%d].name %q: give each check a name of letters, digits, '.', '_' or '-'", i, c.Name)
		}
		if seen[c.Name] || builtinNames[c.Name] {
			return fmt.Errorf("canary.analysis.checks[%d].name %q: used twice (the built-in checks are %s)", i, c.Name, strings.Join(builtinList, ", "))
		}
		seen[c.Name] = true
		if strings.TrimSpace(c.Query) == "" {
			return fmt.Errorf("canary.analysis.checks %q: no query", c.Name)
		}
		if c.Min == nil && c.Max == nil {
			return fmt.Errorf("canary.analysis.checks %q: give it min, max or both", c.Name)
		}
		if _, err := parseQuery(c.Name, c.Query); err != nil {
			return err
		}
	}
	for i, w := range s.Webhooks {
		if w.Name == "" {
			return fmt.Errorf("canary.analysis.webhooks[%d]: give it a name", i)
		}
		if err := httpURL(w.URL); err != nil {
			return fmt.Errorf("canary.analysis.webhooks %q: url %w", w.Name, err)
		}
		if w.When != "pre-rollout" && w.When != "step" {
			return fmt.Errorf("canary.analysis.webhooks %q: when %q: use pre-rollout or step", w.Name, w.When)
		}
	}
	if s.Notify != "" {
		if err := httpURL(s.Notify); err != nil {
			return fmt.Errorf("canary.analysis.notify: %w", err)
		}
	}
	p := s.Prometheus
	if p.URL != "" && p.Service != "" {
		return fmt.Errorf("canary.analysis.prometheus: url and service both set: keep one")
	}
	if p.URL != "" {
		if err := httpURL(p.URL); err != nil {
			return fmt.Errorf("canary.analysis.prometheus.url: %w", err)
		}
	}
	if p.Service != "" {
		if _, err := ParseService(p.Service); err != nil {
			return err
		}
	}
	return nil
}

func httpURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want an http:// or https:// URL", s)
	}
	return nil
}

// ServiceRef is a Service port reached through the API server's proxy.
type ServiceRef struct {
	Namespace, Name, Port string
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ParseService reads NAMESPACE/NAME:PORT (PORT a number or a port name).
func ParseService(s string) (ServiceRef, error) {
	ns, rest, ok1 := strings.Cut(s, "/")
	name, port, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || !dnsLabel.MatchString(ns) || !dnsLabel.MatchString(name) || !(dnsLabel.MatchString(port)) {
		return ServiceRef{}, fmt.Errorf("prometheus service %q: want NAMESPACE/NAME:PORT, e.g. monitoring/prometheus-server:80", s)
	}
	return ServiceRef{ns, name, port}, nil
}

// Step is one step of a rollout: a canary weight, or a pause.
type Step struct {
	Weight int
	Pause  bool
}

func (s Step) String() string {
	if s.Pause {
		return "pause"
	}
	return strconv.Itoa(s.Weight)
}

// Steps read from "10,25,pause,50,100" or a list of numbers and "pause".
type Steps []Step

// ParseSteps reads a comma-separated step list.
func ParseSteps(s string) (Steps, error) {
	var out Steps
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "pause" {
			out = append(out, Step{Pause: true})
			continue
		}
		w, err := strconv.Atoi(strings.TrimSuffix(f, "%"))
		if err != nil {
			return nil, fmt.Errorf("steps %q: %q is neither a canary weight (1..100) nor pause", s, f)
		}
		out = append(out, Step{Weight: w})
	}
	return out, out.validate()
}

func (st Steps) validate() error {
	if len(st) == 0 {
		return fmt.Errorf("steps: none given; e.g. 10,25,50,100")
	}
	if st[0].Pause {
		return fmt.Errorf("steps %s: the first step must be a weight: it brings the new version in", st)
	}
	last := 0
	for _, s := range st {
		if s.Pause {
			continue
		}
		if s.Weight < 1 || s.Weight > 100 {
			return fmt.Errorf("steps %s: weight %d: must be 1..100", st, s.Weight)
		}
		if s.Weight <= last {
			return fmt.Errorf("steps %s: weights must rise (%d after %d)", st, s.Weight, last)
		}
		last = s.Weight
	}
	if last != 100 {
		return fmt.Errorf("steps %s: the last weight must be 100 (swap and final follow it)", st)
	}
	return nil
}

func (st Steps) String() string {
	parts := make([]string, len(st))
	for i, s := range st {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// MarshalJSON writes the step list as its string, the way users write it.
func (st Steps) MarshalJSON() ([]byte, error) { return json.Marshal(st.String()) }

// UnmarshalJSON reads "10,25,pause,100" or [10, 25, "pause", 100].
func (st *Steps) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		parsed, err := ParseSteps(s)
		*st = parsed
		return err
	}
	var list []any
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("steps: want \"10,25,pause,100\" or a list, got %s", b)
	}
	parts := make([]string, len(list))
	for i, v := range list {
		parts[i] = fmt.Sprint(v)
	}
	parsed, err := ParseSteps(strings.Join(parts, ","))
	*st = parsed
	return err
}

// Duration is a time.Duration written as "2m", "30s".
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// PromQL writes the duration as a PromQL range ("2m", "90s").
func (d Duration) PromQL() string {
	s := int64(time.Duration(d) / time.Second)
	switch {
	case s%3600 == 0:
		return fmt.Sprintf("%dh", s/3600)
	case s%60 == 0:
		return fmt.Sprintf("%dm", s/60)
	}
	return fmt.Sprintf("%ds", s)
}

// MarshalJSON writes "2m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "2m" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration: want e.g. \"2m\", got %s", b)
		}
		*d = Duration(time.Duration(n * float64(time.Second)))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}
