package routesim

import (
	"math/rand"
	"net/url"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/renderer"
)

// TestMatchIntersectionProperty: a workload's match B on a chart route with its own
// match A sends to the canary exactly the requests that satisfy both, as Istio
// evaluates them here; requests that satisfy A only stay on production, the rest
// take the chart's next route. Pairs Istio cannot express (two regexes, a prefix and
// a regex on one field) are refused, naming the VirtualService. Random pairs over
// uri, a header and the method, every request of a small universe.
func TestMatchIntersectionProperty(t *testing.T) {
	uris := []string{"", "{exact: /api}", "{exact: /api/beta}", "{prefix: /api}", "{prefix: /ap}", "{prefix: /web}", `{regex: "/api/v[0-9]+"}`, `{regex: "/api.*"}`}
	envs := []string{"", "{exact: prod}", "{exact: beta}", "{prefix: pr}", `{regex: "pr.d"}`, "{}"}
	methods := []string{"", "{exact: GET}", "{exact: POST}"}
	rng := rand.New(rand.NewSource(14))
	match := func() string {
		var parts []string
		if u := uris[rng.Intn(len(uris))]; u != "" {
			parts = append(parts, "uri: "+u)
		}
		if e := envs[rng.Intn(len(envs))]; e != "" {
			parts = append(parts, "headers: {x-env: "+e+"}")
		}
		if m := methods[rng.Intn(len(methods))]; m != "" {
			parts = append(parts, "method: "+m)
		}
		if len(parts) == 0 {
			parts = append(parts, "method: {exact: GET}")
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	type request struct{ path, env, method string }
	var requests []request
	for _, p := range []string{"/", "/api", "/api/beta", "/api/v1", "/apx", "/web/x", "/API"} {
		for _, e := range []string{"-", "prod", "beta", "pr", "prd"} {
			for _, m := range []string{"GET", "POST"} {
				requests = append(requests, request{p, e, m})
			}
		}
	}
	refused, checked := 0, 0
	for i := 0; i < 250; i++ {
		a, b := match(), match()
		chart := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: own
    match: [` + a + `]
    route: [{destination: {host: reviews}}]
  - name: rest
    route: [{destination: {host: elsewhere}}]
`
		c, err := renderer.ParseConfig([]byte("stage: \"0\"\nworkloads:\n  reviews:\n    match:\n    - " + b + "\n"))
		if err != nil {
			t.Fatalf("match %s: %v", b, err)
		}
		var o renderer.Options
		if err := c.Apply(&o); err != nil {
			t.Fatal(err)
		}
		res, err := renderer.Render([]byte(app+chart), o)
		if err != nil {
			if !strings.Contains(err.Error(), "VirtualService reviews") || !strings.Contains(err.Error(), "cannot both be required") {
				t.Errorf("A %s, B %s: refused without naming the VirtualService and why: %v", a, b, err)
			}
			refused++
			continue
		}
		r, err := New(res.Manifest, "", "")
		if err != nil {
			t.Fatal(err)
		}
		an, bn := mustNode(t, a), mustNode(t, b)
		for _, req := range requests {
			headers := map[string]string{}
			if req.env != "-" {
				headers["x-env"] = req.env
			}
			inA := matchOne(an, headers, req.path, req.method, url.Values{}, "reviews")
			inB := matchOne(bn, headers, req.path, req.method, url.Values{}, "reviews")
			want := "elsewhere"
			switch {
			case inA && inB:
				want = "canary"
			case inA:
				want = "production"
			}
			got, err := r.Route(Request{Host: "reviews", Path: req.path, Method: req.method, Headers: headers})
			if err != nil {
				t.Fatalf("A %s, B %s, %+v: %v", a, b, req, err)
			}
			if got.Route == "rest" {
				got.Subset = "elsewhere"
			}
			if got.Subset != want {
				t.Errorf("A %s, B %s: %s %s x-env=%s went to %s (route %s), want %s", a, b, req.method, req.path, req.env, got.Subset, got.Route, want)
			}
			checked++
		}
	}
	t.Logf("%d pairs refused (not expressible in one Istio match), %d requests checked", refused, checked)
	if refused == 0 || checked == 0 {
		t.Errorf("the sample exercised no refusal (%d) or no request (%d)", refused, checked)
	}
}

func mustNode(t *testing.T, flow string) *yaml.Node {
	t.Helper()
	n, err := yaml.Parse(flow)
	if err != nil {
		t.Fatal(err)
	}
	return n.YNode()
}
