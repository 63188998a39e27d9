package routesim

import (
	"math"
	"strings"
	"testing"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

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
  replicas: 2
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews}}
    spec: {containers: [{name: reviews, image: reviews:2}]}
`

func router(t *testing.T, config string) *Router {
	t.Helper()
	c, err := renderer.ParseConfig([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	var o renderer.Options
	if err := c.Apply(&o); err != nil {
		t.Fatal(err)
	}
	o.Namespace = "shop"
	res, err := renderer.Render([]byte(app), o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(res.Manifest, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Seed 003: jason lands on the canary, anyone else does not (stage 0).
func TestHeaderCanary(t *testing.T) {
	r := router(t, "stage: \"0\"\nworkloads:\n  reviews:\n    match:\n    - headers: {end-user: {exact: jason}}\n")
	for user, want := range map[string]string{"jason": "canary", "Jason": "production", "bob": "production", "": "production"} {
		req := Request{Host: "reviews", Headers: map[string]string{}}
		if user != "" {
			req.Headers["End-User"] = user
		}
		res, err := r.Route(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Subset != want || res.Shares[want] != 1 {
			t.Errorf("end-user %q -> %s %v, want all %s", user, res.Subset, res.Shares, want)
		}
	}
}

// Seed 000: the gray=true cookie, a regex matched against the whole cookie header.
func TestCookieCanary(t *testing.T) {
	r := router(t, "stage: preview\nworkloads:\n  reviews:\n    match:\n    - headers: {cookie: {regex: \"^(.*?;)?(gray=true)(;.*)?$\"}}\n")
	// The seed's regex has no room for the space browsers put after ";": a
	// simulator that says so saves a confused rollout.
	for cookie, want := range map[string]string{"gray=true": "canary", "a=1;gray=true;b=2": "canary", "a=1; gray=true": "production",
		"gray=truer": "production", "xgray=true": "production"} {
		res, err := r.Route(Request{Host: "reviews.shop.svc.cluster.local", Headers: map[string]string{"cookie": cookie}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Subset != want {
			t.Errorf("cookie %q -> %s, want %s", cookie, res.Subset, want)
		}
	}
}

// Seed 002: 10% of users, by a hash of their id, within 1.5 points over 10000 ids.
func TestUserShares(t *testing.T) {
	r := router(t, "stage: \"10\"\nworkloads:\n  reviews:\n    userPercent: {header: x-user-id}\n")
	shares, err := r.Users("reviews", "x-user-id", 10000, Request{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(shares["canary"]-0.10) > 0.015 || math.Abs(shares["canary"]+shares["production"]-1) > 1e-9 {
		t.Errorf("shares %v, want canary 0.10 +- 0.015", shares)
	}
	// Stable per user: the same id always lands on the same side.
	a, _ := r.Route(Request{Host: "reviews", Headers: map[string]string{"x-user-id": "user-42"}})
	b, _ := r.Route(Request{Host: "reviews", Headers: map[string]string{"x-user-id": "user-42"}})
	if a.Subset != b.Subset || a.Shares[a.Subset] != 1 {
		t.Errorf("user-42 routed %v then %v", a, b)
	}
	// Without a user id the weights apply: 90/10 by request.
	c, _ := r.Route(Request{Host: "reviews"})
	if c.Shares["canary"] != 0.1 {
		t.Errorf("anonymous request shares %v", c.Shares)
	}
}

func TestWeightsAndErrors(t *testing.T) {
	r := router(t, "stage: \"37\"\n")
	res, err := r.Route(Request{Host: "reviews"})
	if err != nil || math.Abs(res.Shares["canary"]-0.37) > 1e-9 || res.Subset != "production" {
		t.Errorf("37: %v %v", res, err)
	}
	if _, err := r.Route(Request{Host: "ratings"}); err == nil || !strings.Contains(err.Error(), "reviews") {
		t.Errorf("unknown host: %v", err)
	}
}

func TestStringMatch(t *testing.T) {
	r, err := New([]byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: [x]
  http:
  - name: a
    match: [{uri: {prefix: /api}, method: {exact: POST}}]
    route: [{destination: {host: x, subset: a}}]
  - name: b
    match: [{queryParams: {v: {regex: "[0-9]+"}}}, {withoutHeaders: {x-skip: {}}, uri: {exact: /b}}]
    route: [{destination: {host: x, subset: b}}]
  - name: c
    route: [{destination: {host: x, subset: c}}]
`), "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		req  Request
		want string
	}{
		{Request{Host: "x", Path: "/api/v1", Method: "POST"}, "a"},
		{Request{Host: "x", Path: "/api/v1"}, "c"},
		{Request{Host: "x", Path: "/z?v=12"}, "b"},
		{Request{Host: "x", Path: "/z?v=12a"}, "c"},
		{Request{Host: "x", Path: "/b"}, "b"},
		{Request{Host: "x", Path: "/b", Headers: map[string]string{"X-Skip": "1"}}, "c"},
	} {
		res, err := r.Route(tt.req)
		if err != nil || res.Subset != tt.want {
			t.Errorf("%+v -> %v %v, want %s", tt.req, res.Subset, err, tt.want)
		}
	}
}

// An invalid RE2 is an error naming the VirtualService, the route and the field,
// not a silent "no match": Istio refuses such a route.
func TestInvalidRegexReported(t *testing.T) {
	_, err := New([]byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: [x]
  http:
  - name: ok
    match: [{uri: {regex: "/ok.*"}}]
    route: [{destination: {host: x, subset: a}}]
  - name: jason
    match: [{uri: {prefix: /}}, {headers: {end-user: {regex: "(jason"}}}]
    route: [{destination: {host: x, subset: canary}}]
  - route: [{destination: {host: x, subset: b}}]
`), "", "")
	want := `VirtualService x route jason: match[1].headers.end-user.regex "(jason" is not a valid RE2`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}

// A Service with a TCP, a TLS and a UDP port: --port routes a connection by the
// section Istio applies to the port's protocol, and says when none applies.
func TestRouteByPort(t *testing.T) {
	stage, _ := stages.Parse("10")
	res, err := renderer.Render([]byte(`apiVersion: v1
kind: Service
metadata: {name: kv}
spec:
  selector: {app: kv}
  ports:
  - {name: tcp-redis, port: 6379}
  - {name: tls, port: 8443}
  - {name: gossip, port: 7946, protocol: UDP}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kv}
spec:
  selector: {matchLabels: {app: kv}}
  template:
    metadata: {labels: {app: kv}}
    spec: {containers: [{name: kv, image: redis:7}]}
`), renderer.Options{Stage: stage})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(res.Manifest, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		port         uint32
		sni          string
		route, proto string
		canary       float64
		note         string
	}{
		{6379, "", "tcp[0]", "TCP", 0.10, ""},
		{8443, "", "tls[0]", "TLS", 0.10, ""},
		{8443, "kv.other", "", "TLS", 0, "no tls route of VirtualService kv applies to port 8443 with SNI kv.other"},
		{7946, "", "", "UDP", 0, "Istio does not proxy UDP"},
	} {
		got, err := r.Route(Request{Host: "kv", Port: tt.port, SNI: tt.sni})
		if err != nil {
			t.Fatalf("port %d: %v", tt.port, err)
		}
		if got.Route != tt.route || got.Protocol != tt.proto || got.Shares["canary"] != tt.canary || !strings.Contains(got.Note, tt.note) {
			t.Errorf("port %d sni %q: %+v, want route %q protocol %s canary %v note %q", tt.port, tt.sni, got, tt.route, tt.proto, tt.canary, tt.note)
		}
	}
	if _, err := r.Route(Request{Host: "kv", Port: 1}); err == nil || !strings.Contains(err.Error(), "no port 1") {
		t.Errorf("unknown port: %v", err)
	}
}

// Hosts are matched as the renderer matches them (canaried.HostMatches): a request
// for this release's Service by any of its names takes its VirtualService; a
// request for another namespace's Service of the same name does not, nor does one
// naming a namespace when the release's is unknown; a custom cluster domain counts.
func TestHostsAsTheRendererMatches(t *testing.T) {
	manifest := []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: canary}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: data}
spec:
  hosts: [ratings.data.svc.corp.example]
  http:
  - route: [{destination: {host: ratings.data.svc.corp.example, subset: canary}}]
`)
	for _, tt := range []struct {
		namespace, domain, host string
		want                    string // the VirtualService, "" for none
	}{
		{"shop", "", "reviews", "reviews"},
		{"shop", "", "reviews.shop", "reviews"},
		{"shop", "", "reviews.shop.svc.cluster.local", "reviews"},
		{"shop", "", "reviews.other-team.svc.cluster.local", ""},
		{"shop", "corp.example", "reviews.shop.svc.corp.example", "reviews"},
		{"shop", "corp.example", "reviews.shop.svc.cluster.local", ""},
		{"", "", "reviews", "reviews"},
		{"", "", "reviews.shop.svc.cluster.local", ""},
		// A VirtualService in a namespace of its own, hosting its FQDN.
		{"shop", "corp.example", "ratings.data.svc", "ratings"},
		{"shop", "", "ratings.data.svc", ""},
	} {
		r, err := New(manifest, tt.namespace, tt.domain)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Route(Request{Host: tt.host})
		got := res.VirtualService
		if err != nil && tt.want == "" {
			got = ""
		}
		if got != tt.want {
			t.Errorf("namespace %q domain %q: %s -> VirtualService %q (%v), want %q", tt.namespace, tt.domain, tt.host, got, err, tt.want)
		}
	}
}
