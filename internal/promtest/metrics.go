package promtest

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Traffic is what one workload serves: requests per second, the fraction of
// them that fail with 500, and every request's latency in milliseconds.
type Traffic struct {
	RPS       float64
	ErrorRate float64
	LatencyMs float64
	// Reporter is Istio's reporter label: "destination" (default, a sidecar) or
	// "waypoint" (ambient mode).
	Reporter string
}

// buckets are Istio's default request-duration buckets, in milliseconds.
var buckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

type series struct {
	traffic  Traffic
	ok, fail float64
	sum      float64
	bucket   []float64 // cumulative counts per bucket, +Inf last
	last     time.Time
}

func (s *series) advance(now time.Time) {
	dt := now.Sub(s.last).Seconds()
	s.last = now
	if dt <= 0 {
		return
	}
	n := s.traffic.RPS * dt
	s.fail += n * s.traffic.ErrorRate
	s.ok += n * (1 - s.traffic.ErrorRate)
	s.sum += n * s.traffic.LatencyMs
	for i, le := range buckets {
		if s.traffic.LatencyMs <= le {
			s.bucket[i] += n
		}
	}
	s.bucket[len(buckets)] += n
}

// Metrics serves Istio-shaped series: counters grow at the rates set, as a
// destination sidecar reports them.
type Metrics struct {
	mu     sync.Mutex
	series map[[2]string]*series
	srv    *http.Server
	addr   string
}

// NewMetrics starts a metrics server on a loopback port.
func NewMetrics() (*Metrics, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := &Metrics{series: map[[2]string]*series{}, addr: l.Addr().String()}
	m.srv = &http.Server{Handler: http.HandlerFunc(m.serve), ReadHeaderTimeout: 5 * time.Second}
	go m.srv.Serve(l) //nolint:errcheck // ends with Close
	return m, nil
}

// Addr is the server's host:port.
func (m *Metrics) Addr() string { return m.addr }

// Close stops the server.
func (m *Metrics) Close() error { return m.srv.Close() }

// Set changes what a workload (a Deployment's name, as Istio's
// destination_workload) of a namespace serves from now on.
func (m *Metrics) Set(namespace, workload string, t Traffic) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	k := [2]string{namespace, workload}
	s, ok := m.series[k]
	if !ok {
		s = &series{bucket: make([]float64, len(buckets)+1), last: now}
		m.series[k] = s
	}
	s.advance(now)
	s.traffic = t
}

func (m *Metrics) serve(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	keys := make([][2]string, 0, len(m.series))
	for k := range m.series {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"/"+keys[i][1] < keys[j][0]+"/"+keys[j][1] })
	var b strings.Builder
	b.WriteString("# TYPE istio_requests_total counter\n")
	for _, k := range keys {
		s := m.series[k]
		s.advance(now)
		l := labels(k, s.traffic.Reporter)
		fmt.Fprintf(&b, "istio_requests_total{%s,response_code=\"200\"} %g\n", l, s.ok)
		fmt.Fprintf(&b, "istio_requests_total{%s,response_code=\"500\"} %g\n", l, s.fail)
	}
	b.WriteString("# TYPE istio_request_duration_milliseconds histogram\n")
	for _, k := range keys {
		s := m.series[k]
		l := labels(k, s.traffic.Reporter)
		for i, le := range buckets {
			fmt.Fprintf(&b, "istio_request_duration_milliseconds_bucket{%s,le=\"%g\"} %g\n", l, le, s.bucket[i])
		}
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_bucket{%s,le=\"+Inf\"} %g\n", l, s.bucket[len(buckets)])
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_sum{%s} %g\n", l, s.sum)
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_count{%s} %g\n", l, s.bucket[len(buckets)])
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

func labels(k [2]string, reporter string) string {
	if reporter == "" {
		reporter = "destination"
	}
	return fmt.Sprintf(`reporter=%q,destination_workload_namespace=%q,destination_workload=%q,destination_service_namespace=%q`, reporter, k[0], k[1], k[0])
}
