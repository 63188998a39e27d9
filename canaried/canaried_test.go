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
// finds the workload and reads that stage back exactly, from the canary
// Deployment's annotations: final is final (not stable), final's first step is
// final draining (not 0), a starting canary's warm-up is 0 draining, preview is preview, and 100 is 100 even when production
// already runs the canary's images (not swap).
func TestStageRoundTrip(t *testing.T) {
	stable := render(t, app, renderer.Options{})
	for _, tc := range []struct {
		stage    string
		draining bool
		// same: production runs the images the chart renders now.
		same     bool
		weights  Split
		replicas Split
	}{
		{stage: "stable", weights: Split{100, 0}, replicas: Split{3, 0}},
		{stage: "0", weights: Split{100, 0}, replicas: Split{3, 3}},
		{stage: "0", draining: true, weights: Split{100, 0}, replicas: Split{3, 3}},
		{stage: "preview", weights: Split{100, 0}, replicas: Split{3, 3}},
		{stage: "1", weights: Split{99, 1}, replicas: Split{3, 3}},
		{stage: "10", weights: Split{90, 10}, replicas: Split{3, 3}},
		{stage: "50", weights: Split{50, 50}, replicas: Split{3, 3}},
		{stage: "90", weights: Split{10, 90}, replicas: Split{3, 3}},
		{stage: "100", weights: Split{0, 100}, replicas: Split{3, 3}},
		{stage: "100", same: true, weights: Split{0, 100}, replicas: Split{3, 3}},
		{stage: "swap", same: true, weights: Split{0, 100}, replicas: Split{3, 3}},
		{stage: "final", draining: true, same: true, weights: Split{100, 0}, replicas: Split{3, 3}},
		{stage: "final", same: true, weights: Split{100, 0}, replicas: Split{3, 0}},
	} {
		want := stages.State{Stage: mustParse(t, tc.stage), Draining: tc.draining}
		t.Run(fmt.Sprintf("%s draining=%t same=%t", tc.stage, tc.draining, tc.same), func(t *testing.T) {
			s := want.Stage
			var prod []byte
			if !tc.same {
				prod = []byte(manifestText(t, stable))
			}
			m := render(t, strings.ReplaceAll(app, "reviews:2", "reviews:3"), renderer.Options{Stage: s, Draining: tc.draining, ProductionManifest: prod})
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
			if got := m.Stage(w); got != want {
				t.Errorf("stage %+v read back as %+v", want, got)
			}
			if got, ok := m.ReleaseStage(""); !ok || got != want {
				t.Errorf("release stage = %+v, %v", got, ok)
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

// A manifest rendered before the stage annotations (a release staged in pipeline
// mode by an older helm-canary) still reads: the stage is inferred from replicas,
// weights and images.
func TestStageOfAnOlderManifest(t *testing.T) {
	stable := render(t, app, renderer.Options{})
	for _, tc := range []struct{ stage, want string }{{"stable", "stable"}, {"10", "10"}, {"100", "100"}} {
		m := render(t, strings.ReplaceAll(app, "reviews:2", "reviews:3"), renderer.Options{Stage: mustParse(t, tc.stage), ProductionManifest: []byte(manifestText(t, stable))})
		old := m // as read, less the annotation
		for _, o := range old.Objects {
			if a, ok := Dig(o.Fields, "metadata", "annotations").(map[string]any); ok {
				delete(a, renderer.AnnotationStage)
			}
		}
		ws := old.Workloads("")
		if len(ws) != 1 {
			t.Fatalf("%s: workloads %d", tc.stage, len(ws))
		}
		if got := old.Stage(ws[0]); got.Stage.String() != tc.want || got.Draining {
			t.Errorf("older manifest at %s read as %+v, want %s", tc.stage, got, tc.want)
		}
	}
}

func mustParse(t *testing.T, s string) stages.Stage {
	t.Helper()
	st, err := stages.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return st
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
	if got := FormatSplits(Routes(vs.Fields, "reviews", "", "")); got != "90/10" {
		t.Errorf("reviews routes %s, want 90/10 (the jason route goes to subset v2, not production/canary)", got)
	}
	if got := m.Stage(ws[0]).Stage.String(); got != "10" {
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
		name, hosts, routes, service, ns, domain string
		want                                     string
		split                                    bool
	}{
		{"short", "[reviews]", sprintf(weighted, "reviews", "reviews"), "reviews", "shop", "", "70/30", true},
		{"fqdn", "[reviews.shop.svc.cluster.local]", sprintf(weighted, "reviews.shop.svc.cluster.local", "reviews.shop.svc.cluster.local"), "reviews", "shop", "", "70/30", true},
		{"other namespace", "[reviews.other.svc.cluster.local]", sprintf(weighted, "reviews.other.svc.cluster.local", "reviews.other.svc.cluster.local"), "reviews", "shop", "", "", false},
		// The namespace unknown, a host naming one is not taken for the Service,
		// as the renderer does not take it.
		{"namespace unknown", "[reviews.other.svc.cluster.local]", sprintf(weighted, "reviews.other.svc.cluster.local", "reviews.other.svc.cluster.local"), "reviews", "", "", "", false},
		{"custom domain", "[reviews.shop.svc.corp.example]", sprintf(weighted, "reviews.shop.svc.corp.example", "reviews.shop.svc.corp.example"), "reviews", "shop", "corp.example", "70/30", true},
		{"custom domain, default read", "[reviews.shop.svc.corp.example]", sprintf(weighted, "reviews.shop.svc.corp.example", "reviews.shop.svc.corp.example"), "reviews", "shop", "", "", false},
		// An external domain that happens to start with the Service's name is not it.
		{"external lookalike", "[reviews.example.com]", sprintf(weighted, "reviews.example.com", "reviews.example.com"), "reviews", "", "", "", false},
		{"gateway host, mesh destination", "[shop.example.com]", sprintf(weighted, "reviews", "reviews"), "reviews", "", "", "70/30", false},
		{"bare host", "[reviews]", "  - route:\n    - destination: {host: reviews}\n", "reviews", "", "", "100/0", true},
		{"other service", "[ratings]", sprintf(weighted, "ratings", "ratings"), "reviews", "", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := vs(tc.hosts, tc.routes)
			if got := FormatSplits(Routes(v, tc.service, tc.ns, tc.domain)); got != tc.want {
				t.Errorf("routes %q, want %q", got, tc.want)
			}
			if _, ok := TrafficSplit(v, tc.service, tc.ns, tc.domain); ok != tc.split {
				t.Errorf("traffic split found = %v, want %v", ok, tc.split)
			}
		})
	}
}

func TestServiceHost(t *testing.T) {
	for _, tc := range []struct{ host, domain, want string }{
		{"reviews", "", "reviews/"},
		{"reviews.shop.svc", "", "reviews/shop"},
		{"reviews.shop.svc.cluster.local", "", "reviews/shop"},
		{"reviews.shop.svc.corp.example", "corp.example", "reviews/shop"},
		{"reviews.shop.svc.corp.example", "", "-"},
		{"reviews.shop.svc.cluster.local", "corp.example", "-"},
		{"shop.example.com", "", "-"}, {"*.example.com", "", "-"}, {"*", "", "-"}, {"", "", "-"},
	} {
		s, ns, ok := ServiceHost(tc.host, tc.domain)
		got := s + "/" + ns
		if !ok {
			got = "-"
		}
		if got != tc.want {
			t.Errorf("ServiceHost(%q, %q) = %s, want %s", tc.host, tc.domain, got, tc.want)
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

// A pipeline's release keeps no settings: the cluster domain the renderer compared
// hosts in is read back from the canary Deployment, so the weights of a chart's
// VirtualService for the FQDN in that domain are found, as status finds them.
func TestRecordedClusterDomain(t *testing.T) {
	vs := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.shop.svc.corp.example]
  http:
  - route: [{destination: {host: reviews.shop.svc.corp.example}}]
`
	m := render(t, app+vs, renderer.Options{Stage: mustParse(t, "10"), Namespace: "shop", ClusterDomain: "corp.example"})
	if m.Domain != "corp.example" {
		t.Errorf("recorded domain %q, want corp.example", m.Domain)
	}
	ws := m.Workloads("")
	if len(ws) != 1 {
		t.Fatalf("workloads %d", len(ws))
	}
	if got := m.Weights(ws[0]); got != (Split{90, 10}) {
		t.Errorf("weights %s, want 90/10", got)
	}
	m.Domain = "" // as a reader that ignored the record
	if got := m.Weights(ws[0]); got != (Split{100, 0}) {
		t.Errorf("weights in cluster.local %s, want none found (100/0)", got)
	}
}

// Version reads what Istio reports for each side, from the goldens: bookinfo keeps
// version in its selectors (both sides v2), productpage has no version label
// (production latest, the canary canary), configured has app.kubernetes.io/version.
func TestVersion(t *testing.T) {
	for golden, want := range map[string][2]string{
		"bookinfo-reviews-10": {"v2", "v2"},
		"productpage-10":      {"latest", "canary"},
		"configured-10":       {"1.27", "1.28-canary"},
	} {
		data, err := os.ReadFile("../test/golden/" + golden + "/expected.yaml")
		if err != nil {
			t.Fatal(err)
		}
		m, err := Read(data, "")
		if err != nil {
			t.Fatal(err)
		}
		w := m.Workloads("")[0]
		if got := [2]string{Version(w.Production.Fields), Version(w.Canary.Fields)}; got != want {
			t.Errorf("%s: versions %v, want %v", golden, got, want)
		}
	}
}
