package canaried

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// An app shaped like bookinfo's reviews: a Service, two Deployments it selects,
// and a chart's own VirtualService with a header route first.
const app = `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews}
spec:
  replicas: 3
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews}}
    spec: {containers: [{name: reviews, image: reviews:2}, {name: proxy, image: proxy:1}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: reviews-canary}
data: {a: b}
`

func render(t *testing.T, in string, o renderer.Options) *Manifest {
	t.Helper()
	res, err := renderer.Render([]byte(in), o)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Read(res.Manifest, "shop")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The reader's stage is the writer's: whatever stage the renderer writes, Read
// finds the workload and infers that stage back (final, as written, is stable again;
// preview is the 0 stage's traffic).
func TestStageRoundTrip(t *testing.T) {
	stable := render(t, app, renderer.Options{})
	for _, tc := range []struct {
		stage, want string
		weights     Split
		replicas    Split
	}{
		{"stable", "stable", Split{100, 0}, Split{3, 0}},
		{"0", "0", Split{100, 0}, Split{3, 3}},
		{"preview", "0", Split{100, 0}, Split{3, 3}},
		{"1", "1", Split{99, 1}, Split{3, 3}},
		{"10", "10", Split{90, 10}, Split{3, 3}},
		{"50", "50", Split{50, 50}, Split{3, 3}},
		{"90", "90", Split{10, 90}, Split{3, 3}},
		{"100", "100", Split{0, 100}, Split{3, 3}},
		{"swap", "swap", Split{0, 100}, Split{3, 3}},
		{"final", "stable", Split{100, 0}, Split{3, 0}},
	} {
		t.Run(tc.stage, func(t *testing.T) {
			s, err := stages.Parse(tc.stage)
			if err != nil {
				t.Fatal(err)
			}
			var prod []byte
			if tc.stage != "swap" && tc.stage != "final" {
				prod = []byte(manifestText(t, stable))
			}
			m := render(t, strings.ReplaceAll(app, "reviews:2", "reviews:3"), renderer.Options{Stage: s, ProductionManifest: prod})
			ws := m.Workloads("")
			if len(ws) != 1 {
				t.Fatalf("workloads = %d, want 1 (the ConfigMap named reviews-canary is no canary)", len(ws))
			}
			w := ws[0]
			if w.Name != "reviews" || w.CanaryName() != "reviews-canary" || w.Service != "reviews" || w.DestinationRule == nil {
				t.Fatalf("workload = %s/%s service %q DR %v", w.Name, w.CanaryName(), w.Service, w.DestinationRule)
			}
			if got := m.Weights(w); got != tc.weights {
				t.Errorf("weights %s, want %s", got, tc.weights)
			}
			if got := m.Stage(w).String(); got != tc.want {
				t.Errorf("stage %s read back as %s, want %s", tc.stage, got, tc.want)
			}
			if got, ok := m.ReleaseStage(""); !ok || got.String() != tc.want {
				t.Errorf("release stage = %s, %v", got, ok)
			}
			p, _ := Replicas(w.Production.Fields)
			c, _ := Replicas(w.Canary.Fields)
			if (Split{p, c}) != tc.replicas {
				t.Errorf("replicas %d/%d, want %s", p, c, tc.replicas)
			}
			if got := strings.Join(Images(w.Canary.Fields), ","); got != "reviews:3,proxy:1" {
				t.Errorf("canary images %s", got)
			}
		})
	}
}

func manifestText(t *testing.T, m *Manifest) string {
	t.Helper()
	var b strings.Builder
	for _, o := range m.Objects {
		s, err := o.Node.String()
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n" + s)
	}
	return b.String()
}

// A custom track label is read with the same key the release renders with.
func TestTrackLabel(t *testing.T) {
	m := render(t, app, renderer.Options{Stage: mustStage(t, "10"), TrackLabel: "example.com/track"})
	if len(m.Workloads("example.com/track")) != 1 {
		t.Error("workload not found with its own track label")
	}
	if len(m.Workloads("")) != 0 {
		t.Error("workload found with the default track label, which its selector does not carry")
	}
}

// bookinfo's reviews: the chart's jason route stays first; the split read is the
// default route's, and Routes lists both in order.
func TestBookinfoReviews(t *testing.T) {
	data, err := os.ReadFile("../test/golden/bookinfo-reviews-10/expected.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Read(data, "")
	if err != nil {
		t.Fatal(err)
	}
	ws := m.Workloads("")
	if len(ws) != 1 || ws[0].Name != "reviews-v2" || ws[0].Service != "reviews" {
		t.Fatalf("workloads = %+v", ws)
	}
	vs := m.Get("VirtualService", "reviews")
	if vs == nil {
		t.Fatal("no VirtualService reviews")
	}
	if got := FormatSplits(Routes(vs.Fields, "reviews", "")); got != "90/10" {
		t.Errorf("reviews routes %s, want 90/10 (the jason route goes to subset v2, not production/canary)", got)
	}
	if got := m.Stage(ws[0]).String(); got != "10" {
		t.Errorf("stage %s, want 10", got)
	}
}

func TestRoutesAndHosts(t *testing.T) {
	vs := func(hosts string, routes string) map[string]any {
		m, err := Read([]byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: "+hosts+"\n  http:\n"+routes), "")
		if err != nil {
			t.Fatal(err)
		}
		return m.Objects[0].Fields
	}
	weighted := "  - route:\n    - {destination: {host: %s, subset: production}, weight: 70}\n    - {destination: {host: %s, subset: canary}, weight: 30}\n"
	for _, tc := range []struct {
		name, hosts, routes, service, ns string
		want                             string
		split                            bool
	}{
		{"short", "[reviews]", sprintf(weighted, "reviews", "reviews"), "reviews", "shop", "70/30", true},
		{"fqdn", "[reviews.shop.svc.cluster.local]", sprintf(weighted, "reviews.shop.svc.cluster.local", "reviews.shop.svc.cluster.local"), "reviews", "shop", "70/30", true},
		{"other namespace", "[reviews.other.svc.cluster.local]", sprintf(weighted, "reviews.other.svc.cluster.local", "reviews.other.svc.cluster.local"), "reviews", "shop", "", false},
		{"any namespace", "[reviews.other.svc.cluster.local]", sprintf(weighted, "reviews.other.svc.cluster.local", "reviews.other.svc.cluster.local"), "reviews", "", "70/30", true},
		// An external domain that happens to start with the Service's name is not it.
		{"external lookalike", "[reviews.example.com]", sprintf(weighted, "reviews.example.com", "reviews.example.com"), "reviews", "", "", false},
		{"gateway host, mesh destination", "[shop.example.com]", sprintf(weighted, "reviews", "reviews"), "reviews", "", "70/30", false},
		{"bare host", "[reviews]", "  - route:\n    - destination: {host: reviews}\n", "reviews", "", "100/0", true},
		{"other service", "[ratings]", sprintf(weighted, "ratings", "ratings"), "reviews", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := vs(tc.hosts, tc.routes)
			if got := FormatSplits(Routes(v, tc.service, tc.ns)); got != tc.want {
				t.Errorf("routes %q, want %q", got, tc.want)
			}
			if _, ok := TrafficSplit(v, tc.service, tc.ns); ok != tc.split {
				t.Errorf("traffic split found = %v, want %v", ok, tc.split)
			}
		})
	}
}

func TestServiceHost(t *testing.T) {
	for host, want := range map[string]string{
		"reviews": "reviews/", "reviews.shop.svc": "reviews/shop", "reviews.shop.svc.cluster.local": "reviews/shop",
		"shop.example.com": "-", "*.example.com": "-", "*": "-", "": "-",
	} {
		s, ns, ok := ServiceHost(host)
		got := s + "/" + ns
		if !ok {
			got = "-"
		}
		if got != want {
			t.Errorf("ServiceHost(%q) = %s, want %s", host, got, want)
		}
	}
}

func TestUserTaggers(t *testing.T) {
	m := render(t, app, renderer.Options{Stage: mustStage(t, "10"), PerWorkload: map[string]renderer.WorkloadOptions{
		"reviews": {UserPercent: &renderer.UserPercent{Header: "X-User-Id"}},
	}})
	ts, err := m.UserTaggers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].UserHeader != "x-user-id" || ts[0].Percent != 10 || ts[0].TagHeader == "" {
		t.Errorf("taggers = %+v", ts)
	}
	bad, err := Read([]byte("apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata:\n  name: f\n  annotations: {helm-canary.io/user-header: x, helm-canary.io/canary-percent: ten}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.UserTaggers(); err == nil || !strings.Contains(err.Error(), "EnvoyFilter f") {
		t.Errorf("a bad percent annotation: %v", err)
	}
}

// Get returns the last object of a name: a rollback appends the pinned Deployment.
func TestGetLast(t *testing.T) {
	m, err := Read([]byte("kind: Deployment\nmetadata: {name: a}\nspec: {replicas: 1}\n---\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: 2}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := Replicas(m.Get("Deployment", "a").Fields); n != 2 {
		t.Errorf("Get returned the first of two, replicas %d", n)
	}
	if m.Get("Deployment", "b") != nil {
		t.Error("Get found a missing object")
	}
	if _, err := Read([]byte("kind: [\n"), ""); err == nil {
		t.Error("bad YAML read without error")
	}
}

func mustStage(t *testing.T, s string) stages.Stage {
	t.Helper()
	st, err := stages.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
