package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	"github.com/helm-canary/helm-canary/internal/promtest"
)

// `helm canary rollout` against a real Prometheus scraping Istio-shaped series
// that each test sets for its namespace's production and canary workloads.

const rolloutInterval = "5s"

// metricsEnv is a metrics server and the Prometheus that scrapes it, shared by
// the tests of this file (each writes its own namespace's series).
var metricsEnv = sync.OnceValues(func() (*rolloutMetrics, error) {
	metricsStarted.Store(true)
	m, err := promtest.NewMetrics()
	if err != nil {
		return nil, err
	}
	prom, err := promtest.Start(context.Background(), m.Addr())
	if err != nil {
		return nil, err
	}
	return &rolloutMetrics{Metrics: m, prom: prom}, nil
})

var metricsStarted atomic.Bool

type rolloutMetrics struct {
	*promtest.Metrics
	prom *promtest.Server
}

func rolloutEnv(t *testing.T) *rolloutMetrics {
	t.Helper()
	requireCluster(t)
	m, err := metricsEnv()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// hooks records the webhook calls and notifications a rollout makes; onStep
// runs at each step webhook call (the test changes the canary's metrics there).
type hooks struct {
	mu      sync.Mutex
	calls   []map[string]any
	events  []map[string]any
	onStep  func(weight int)
	srv     *httptest.Server
	failPre bool
}

func newHooks(t *testing.T) *hooks {
	h := &hooks{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		h.mu.Lock()
		defer h.mu.Unlock()
		switch r.URL.Path {
		case "/notify":
			h.events = append(h.events, m)
		default:
			h.calls = append(h.calls, m)
			if m["phase"] == "step" && h.onStep != nil {
				h.onStep(int(m["weight"].(float64)))
			}
			if m["phase"] == "pre-rollout" && h.failPre {
				http.Error(w, "load generator not ready", http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// analysisFile writes canary.analysis settings using the hooks, and returns its path.
func (h *hooks) analysisFile(t *testing.T, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "analysis.yaml")
	doc := "webhooks:\n- name: load\n  url: " + h.srv.URL + "/load\n  when: pre-rollout\n- name: smoke\n  url: " + h.srv.URL + "/smoke\nnotify: " + h.srv.URL + "/notify\n" + extra
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func (h *hooks) eventNames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e["event"].(string))
		if e["text"] == "" || e["text"] == nil {
			out = append(out, "(no text)")
		}
	}
	return out
}

type rolloutReport struct {
	Outcome string `json:"outcome"`
	Step    int    `json:"step"`
	Weight  int    `json:"weight"`
	Stage   string `json:"stage"`
	Message string `json:"message"`
	Failed  []struct {
		Workload, Check, Status, Detail string
		Value                           *float64
	} `json:"failed"`
	History []struct{ Step, Weight int } `json:"history"`
}

// rollout runs `helm canary rollout -o json` and returns the report and exit code.
func (h *helmEnv) rollout(t *testing.T, ns string, args ...string) (rolloutReport, int, string) {
	t.Helper()
	stdout, stderr, err := h.run(t, append([]string{"canary", "rollout", "-n", ns, "-o", "json"}, args...)...)
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r rolloutReport
	if stdout != "" {
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("rollout -o json: %v\n%s\nstderr:\n%s", err, stdout, stderr)
		}
	}
	t.Logf("rollout: exit %d, %s: %s", code, r.Outcome, r.Message)
	return r, code, stderr
}

// installForRollout installs examples/productpage at stable (version 83) and sets
// both workloads' traffic.
func installForRollout(t *testing.T, h *helmEnv, ns string, m *rolloutMetrics, prod, canary promtest.Traffic) {
	t.Helper()
	h.stage(t, ns, "stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83", "--wait", "--timeout", "60s")
	m.Set(ns, "productpage", prod)
	m.Set(ns, "productpage-canary", canary)
}

var healthy = promtest.Traffic{RPS: 20, LatencyMs: 40}

func productionImage(t *testing.T, ns string) string {
	return getDeployment(t, ns, "productpage").Images["productpage"]
}

// A good canary walks every step, then swap and final: exit 0, production on the
// new version, the progress stored as promoted, webhooks and notifications called.
func TestRolloutPromotes(t *testing.T) {
	m := rolloutEnv(t)
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		installForRollout(t, h, ns, m, healthy, healthy)
		hk := newHooks(t)
		r, code, stderr := h.rollout(t, ns, "pp", "--set", "image.tag=84", "--steps", "25,50,100", "--interval", rolloutInterval,
			"--prometheus", m.prom.URL, "--analysis", hk.analysisFile(t, ""), "--drain-time", "0s")
		if code != 0 || r.Outcome != "promoted" {
			t.Fatalf("exit %d, outcome %q, want 0 promoted; stderr:\n%s", code, r.Outcome, stderr)
		}
		if len(r.History) != 3 || r.History[2].Weight != 100 {
			t.Errorf("history %+v, want the 3 steps", r.History)
		}
		if img := productionImage(t, ns); !strings.HasSuffix(img, ":84") {
			t.Errorf("production runs %s after the rollout, want :84", img)
		}
		wantRolledOut(t, ns, "productpage-canary", 0)
		v := h.releaseValues(t, "pp", ns)
		if got := valueAt(v, "canary.stage") + "/" + valueAt(v, "canary.rollout.status"); got != "final/promoted" {
			t.Errorf("stored stage/rollout status %s, want final/promoted", got)
		}
		for _, want := range []string{"success-rate", "latency-p99", "request-count", "canary at 50%"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("progress on stderr lacks %q:\n%s", want, stderr)
			}
		}
		hk.mu.Lock()
		var phases []string
		for _, c := range hk.calls {
			phases = append(phases, c["phase"].(string)+":"+jsonNumber(c["weight"]))
			if c["release"] != "pp" || c["namespace"] != ns {
				t.Errorf("webhook body %v lacks the release and namespace", c)
			}
		}
		hk.mu.Unlock()
		if got := strings.Join(phases, ","); got != "pre-rollout:0,step:25,step:50,step:100" {
			t.Errorf("webhook calls %s", got)
		}
		if got := strings.Join(hk.eventNames(), ","); got != "step,step,step,promoted" {
			t.Errorf("notifications %s, want step,step,step,promoted (each with text)", got)
		}
	})
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The canary's error rate rises at the second step: rolled back to stable, exit
// 1, the report names the check, its value and the step.
func TestRolloutRollsBackOnErrors(t *testing.T) {
	m := rolloutEnv(t)
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		installForRollout(t, h, ns, m, healthy, healthy)
		hk := newHooks(t)
		hk.onStep = func(weight int) {
			if weight >= 50 {
				m.Set(ns, "productpage-canary", promtest.Traffic{RPS: 20, ErrorRate: 0.2, LatencyMs: 40})
			}
		}
		r, code, stderr := h.rollout(t, ns, "pp", "--set", "image.tag=84", "--steps", "25,50,100", "--interval", rolloutInterval,
			"--prometheus", m.prom.URL, "--analysis", hk.analysisFile(t, ""))
		if code != 1 || r.Outcome != "rolled-back" {
			t.Fatalf("exit %d, outcome %q, want 1 rolled-back; stderr:\n%s", code, r.Outcome, stderr)
		}
		if r.Step != 2 || r.Weight != 50 || r.Stage != "stable" {
			t.Errorf("report at step %d weight %d stage %s, want step 2, 50, stable", r.Step, r.Weight, r.Stage)
		}
		if len(r.Failed) != 1 || r.Failed[0].Check != "success-rate" || r.Failed[0].Value == nil || *r.Failed[0].Value > 85 {
			t.Errorf("failed checks %+v, want success-rate at about 80%%", r.Failed)
		}
		if !strings.Contains(r.Message, "success-rate") || !strings.Contains(r.Message, "min 99%") {
			t.Errorf("message %q does not name the check and its threshold", r.Message)
		}
		if img := productionImage(t, ns); !strings.HasSuffix(img, ":83") {
			t.Errorf("production runs %s, want :83", img)
		}
		wantRolledOut(t, ns, "productpage-canary", 0)
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 100, "canary": 0})
		if got := strings.Join(hk.eventNames(), ","); got != "step,rolled-back" {
			t.Errorf("notifications %s, want step,rolled-back", got)
		}
	})
}

// Within the absolute thresholds but worse than production: the relative check
// fails and the release goes back to stable.
func TestRolloutRelativeCheck(t *testing.T) {
	t.Parallel()
	m := rolloutEnv(t)
	h, ns := newHelmEnv(t, 4), newNamespace(t)
	installForRollout(t, h, ns, m, healthy, promtest.Traffic{RPS: 20, ErrorRate: 0.008, LatencyMs: 40})
	hk := newHooks(t)
	r, code, stderr := h.rollout(t, ns, "pp", "--set", "image.tag=84", "--steps", "25,100", "--interval", rolloutInterval,
		"--prometheus", m.prom.URL, "--analysis", hk.analysisFile(t, "relative:\n  errorRatePoints: 0.5\n"))
	if code != 1 || r.Outcome != "rolled-back" {
		t.Fatalf("exit %d, outcome %q, want 1 rolled-back; stderr:\n%s", code, r.Outcome, stderr)
	}
	if len(r.Failed) != 1 || r.Failed[0].Check != "error-rate-vs-production" {
		t.Errorf("failed %+v, want only error-rate-vs-production (the absolute success rate, about 99.2%%, passes)", r.Failed)
	}
}

// Idle traffic: inconclusive, never a pass. The rollout holds at its step
// (exit 2) and promotes nothing.
func TestRolloutIdleIsInconclusive(t *testing.T) {
	t.Parallel()
	m := rolloutEnv(t)
	h, ns := newHelmEnv(t, 3), newNamespace(t)
	installForRollout(t, h, ns, m, healthy, promtest.Traffic{RPS: 0.1, LatencyMs: 40})
	hk := newHooks(t)
	r, code, stderr := h.rollout(t, ns, "pp", "--set", "image.tag=84", "--steps", "25,100", "--interval", rolloutInterval,
		"--prometheus", m.prom.URL, "--analysis", hk.analysisFile(t, "inconclusiveLimit: 2\n"))
	if code != 2 || r.Outcome != "held" {
		t.Fatalf("exit %d, outcome %q, want 2 held; stderr:\n%s", code, r.Outcome, stderr)
	}
	if !strings.Contains(r.Message, "too little traffic") || r.Step != 1 {
		t.Errorf("message %q (step %d), want too little traffic at step 1", r.Message, r.Step)
	}
	if v := h.releaseValues(t, "pp", ns); valueAt(v, "canary.stage") != "25" {
		t.Errorf("stage %s, want the rollout held at 25", valueAt(v, "canary.stage"))
	}
	if img := productionImage(t, ns); !strings.HasSuffix(img, ":83") {
		t.Errorf("production runs %s, want :83 (nothing promoted)", img)
	}
}

// Prometheus unreachable: exit 2, and no revision is made.
func TestRolloutPrometheusUnreachable(t *testing.T) {
	t.Parallel()
	requireCluster(t)
	h, ns := newHelmEnv(t, 4), newNamespace(t)
	h.stage(t, ns, "stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83", "--wait", "--timeout", "60s")
	before := h.lastRevision(t, "pp", ns)
	r, code, stderr := h.rollout(t, ns, "pp", "--set", "image.tag=84", "--interval", rolloutInterval, "--prometheus", "http://127.0.0.1:1")
	if code != 2 || r.Outcome != "held" || !strings.Contains(r.Message, "unreachable") {
		t.Fatalf("exit %d, outcome %q (%s), want 2 held, unreachable; stderr:\n%s", code, r.Outcome, r.Message, stderr)
	}
	if after := h.lastRevision(t, "pp", ns); after.Revision != before.Revision {
		t.Errorf("revision %d after a rollout that could not see its metrics, want %d", after.Revision, before.Revision)
	}
}

// A rollout killed mid-step resumes with --resume; run again without it, it is
// refused with that advice.
func TestRolloutKilledThenResumed(t *testing.T) {
	t.Parallel()
	m := rolloutEnv(t)
	h, ns := newHelmEnv(t, 3), newNamespace(t)
	installForRollout(t, h, ns, m, healthy, healthy)
	args := []string{"--interval", "20s", "--prometheus", m.prom.URL, "--drain-time", "0s"}
	cmd, out := h.background(t, ns, append([]string{"rollout", "pp", "--set", "image.tag=84", "--steps", "25,50,100"}, args...)...)
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out.String(), "analysing in") {
		if time.Now().After(deadline) {
			t.Fatalf("the rollout did not reach its first wait:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	t.Logf("killed during step 1's interval:\n%s", out.String())

	_, code, stderr := h.rollout(t, ns, append([]string{"pp", "--set", "image.tag=85"}, args...)...)
	if code != 2 || !strings.Contains(stderr, "--resume") {
		t.Fatalf("a second rollout without --resume: exit %d, want 2 with advice; stderr:\n%s", code, stderr)
	}
	r, code, stderr := h.rollout(t, ns, append([]string{"pp", "--resume", "--interval", rolloutInterval}, args[2:]...)...)
	if code != 0 || r.Outcome != "promoted" {
		t.Fatalf("--resume: exit %d, outcome %q; stderr:\n%s", code, r.Outcome, stderr)
	}
	if !strings.Contains(stderr, "every "+rolloutInterval) || !strings.Contains(stderr, "--interval, --prometheus given now override them") {
		t.Errorf("--resume --interval does not say it overrides the stored 20s:\n%s", stderr)
	}
	if img := productionImage(t, ns); !strings.HasSuffix(img, ":84") {
		t.Errorf("production runs %s, want :84", img)
	}
}

// A pause step stops with exit 0 and says how to go on. --resume needs no flags:
// the interval lives in the release values (canary.analysis), the steps and the
// Prometheus given as flags are stored with the rollout's progress.
func TestRolloutPauseAndResume(t *testing.T) {
	t.Parallel()
	m := rolloutEnv(t)
	h, ns := newHelmEnv(t, 4), newNamespace(t)
	installForRollout(t, h, ns, m, healthy, healthy)
	values := filepath.Join(t.TempDir(), "values.yaml")
	doc := "image:\n  tag: \"84\"\ncanary:\n  analysis:\n    interval: " + rolloutInterval + "\n"
	if err := os.WriteFile(values, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	r, code, stderr := h.rollout(t, ns, "pp", "-f", values, "--steps", "10,pause,50,100", "--prometheus", m.prom.URL, "--drain-time", "0s")
	if code != 0 || r.Outcome != "paused" || r.Step != 2 || r.Weight != 10 {
		t.Fatalf("exit %d, %q at step %d weight %d, want 0 paused at step 2 (10%%); stderr:\n%s", code, r.Outcome, r.Step, r.Weight, stderr)
	}
	if !strings.Contains(r.Message, "--resume") {
		t.Errorf("the pause does not say how to go on: %s", r.Message)
	}
	if v := h.releaseValues(t, "pp", ns); valueAt(v, "canary.rollout.status") != "paused" || valueAt(v, "canary.stage") != "10" {
		t.Errorf("stored %s at stage %s, want paused at 10", valueAt(v, "canary.rollout.status"), valueAt(v, "canary.stage"))
	}
	r, code, stderr = h.rollout(t, ns, "pp", "--resume", "--drain-time", "0s")
	if code != 0 || r.Outcome != "promoted" || len(r.History) != 3 {
		t.Fatalf("--resume: exit %d, outcome %q, history %+v; stderr:\n%s", code, r.Outcome, r.History, stderr)
	}
	if want := "every " + rolloutInterval + ", metrics from " + m.prom.URL; !strings.Contains(stderr, want) || !strings.Contains(stderr, "started with") {
		t.Errorf("--resume does not say it goes on with the settings it started with (%q):\n%s", want, stderr)
	}
	if img := productionImage(t, ns); !strings.HasSuffix(img, ":84") {
		t.Errorf("production runs %s, want :84", img)
	}
}

// stopRolloutMetrics stops the shared Prometheus and metrics server, if a test
// started them (TestMain calls it).
func stopRolloutMetrics() {
	m, err := metricsEnv()
	if err == nil {
		m.prom.Stop()
		_ = m.Close()
	}
}

// A CI job with only kube access reaches Prometheus through the API server's
// service proxy (--prometheus-service NAMESPACE/NAME:PORT). The Service has no
// selector; its Endpoints name a pod whose IP is this machine's address, where a
// Prometheus listens (the API server proxies only to pods, never to loopback).
func TestRolloutThroughServiceProxy(t *testing.T) {
	t.Parallel()
	m := rolloutEnv(t)
	host := externalAddress(t)
	prom, err := promtest.StartOn(t.Context(), host, m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()
	_, portText, _ := strings.Cut(strings.TrimPrefix(prom.URL, "http://"+host), ":")
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	h, ns := newHelmEnv(t, 3), newNamespace(t)
	kube := clients(t).kube
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "prometheus"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "web", Port: 9090, TargetPort: intstr.FromInt(port)}}}}
	if _, err := kube.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The proxy only goes to addresses that are pods' IPs: a pod on a node of its
	// own (unschedulable, and not one kwok manages) with this machine's address.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-host"}, Spec: corev1.NodeSpec{Unschedulable: true}}
	if _, err := kube.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "prometheus"},
		Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "prometheus", Image: "prom/prometheus"}}}}
	if pod, err = kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase, pod.Status.PodIP, pod.Status.PodIPs = corev1.PodRunning, host, []corev1.PodIP{{IP: host}}
	if _, err := kube.CoreV1().Pods(ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "prometheus"}, //nolint:staticcheck // the service proxy reads Endpoints
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: host, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "prometheus"}}},
			Ports:     []corev1.EndpointPort{{Name: "web", Port: int32(port)}}}}}
	if _, err := kube.CoreV1().Endpoints(ns).Create(t.Context(), eps, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	installForRollout(t, h, ns, m, healthy, healthy)
	r, code, stderr := h.rollout(t, ns, "pp", "--set", "image.tag=84", "--steps", "100", "--interval", rolloutInterval,
		"--prometheus-service", ns+"/prometheus:web", "--drain-time", "0s")
	if code != 0 || r.Outcome != "promoted" {
		t.Fatalf("exit %d, outcome %q (%s), want 0 promoted; stderr:\n%s", code, r.Outcome, r.Message, stderr)
	}
}

// externalAddress is a non-loopback IPv4 address of this machine.
func externalAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address for the API server to proxy to")
	return ""
}

// A new version whose pods never become ready fails its first step's rollout
// (as --wait does): back to stable, exit 1, production untouched.
func TestRolloutNeverReadyCanaryRollsBack(t *testing.T) {
	t.Parallel()
	m := rolloutEnv(t)
	h, ns := newHelmEnv(t, 3), newNamespace(t)
	installForRollout(t, h, ns, m, healthy, healthy)
	r, code, stderr := h.rollout(t, ns, "pp", "--set", "image.tag="+localcluster.NeverReadyTag, "--steps", "25,100", "--interval", rolloutInterval,
		"--prometheus", m.prom.URL, "--timeout", "20s")
	if code != 1 || r.Outcome != "rolled-back" || r.Stage != "stable" {
		t.Fatalf("exit %d, outcome %q at stage %q, want 1 rolled-back to stable; stderr:\n%s", code, r.Outcome, r.Stage, stderr)
	}
	if len(r.Failed) != 1 || r.Failed[0].Check != "rollout" || !strings.Contains(r.Failed[0].Detail, "productpage-canary") {
		t.Errorf("failed %+v, want the rollout of productpage-canary named", r.Failed)
	}
	if img := productionImage(t, ns); !strings.HasSuffix(img, ":83") {
		t.Errorf("production runs %s, want :83", img)
	}
	wantRolledOut(t, ns, "productpage-canary", 0)
}
