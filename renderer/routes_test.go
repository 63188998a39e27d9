package renderer

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

func renderConfig(t *testing.T, in, config string) string {
	t.Helper()
	c, err := ParseConfig([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	var o Options
	if err := c.Apply(&o); err != nil {
		t.Fatal(err)
	}
	return render(t, in, o)
}

func routeNames(t *testing.T, vs *yaml.RNode) []string {
	var names []string
	for _, r := range lookup(vs.YNode(), "spec", "http").Content {
		name := "<default>"
		if n := field(r, "name"); n != nil {
			name = n.Value
		}
		names = append(names, name)
	}
	return names
}

// Seed 003: `end-user: jason` goes to the canary; seed 000: the gray=true cookie.
func TestMatchRoutes(t *testing.T) {
	cfg := `stage: "%s"
workloads:
  cart:
    match:
    - headers: {end-user: {exact: jason}}
    - headers: {cookie: {regex: "^(.*?;)?(gray=true)(;.*)?$"}}
`
	for _, stage := range []string{"10", "preview", "swap"} {
		out := renderConfig(t, appAt("2.0"), fmt.Sprintf(cfg, stage))
		vs := find(t, out, "VirtualService", "cart-api")
		if got := strings.Join(routeNames(t, vs), ","); got != "helm-canary-match,<default>" {
			t.Fatalf("%s: routes %s", stage, got)
		}
		wantField(t, vs, "spec.http[0].match[0].headers.end-user.exact", "jason")
		wantField(t, vs, "spec.http[0].match[1].headers.cookie.regex", "^(.*?;)?(gray=true)(;.*)?$")
		wantField(t, vs, "spec.http[0].route[0].destination.subset", "canary")
	}
	for _, stage := range []string{"stable", "final"} {
		vs := find(t, renderConfig(t, appAt("2.0"), fmt.Sprintf(cfg, stage)), "VirtualService", "cart-api")
		if got := strings.Join(routeNames(t, vs), ","); got != "<default>" {
			t.Errorf("%s: routes %s, want the match route gone", stage, got)
		}
	}
	// Preview: canary pods up, no weighted traffic.
	out := renderConfig(t, appAt("2.0"), fmt.Sprintf(cfg, "preview"))
	if w := weights(t, find(t, out, "VirtualService", "cart-api"), 1); w["production"] != "100" || w["canary"] != "0" {
		t.Errorf("preview weights %v", w)
	}
	wantField(t, find(t, out, "Deployment", "cart-canary"), "spec.replicas", "3")

	if _, err := ParseConfig([]byte("workloads:\n  cart:\n    match:\n    - hedaers: {a: {exact: b}}\n")); err != nil {
		t.Fatal(err)
	}
	c, _ := ParseConfig([]byte("workloads:\n  cart:\n    match:\n    - hedaers: {a: {exact: b}}\n"))
	var o Options
	if err := c.Apply(&o); err == nil || !strings.Contains(err.Error(), "hedaers") {
		t.Errorf("misspelt match field: %v", err)
	}
}

// The chart's own routes keep their matches: an extra route ANDs them.
func TestExtrasOnAGatewayRoute(t *testing.T) {
	gw := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop-ingress}
spec:
  hosts: ["shop.example.com"]
  gateways: [shop-gateway]
  http:
  - name: cart
    match: [{uri: {prefix: /cart}}]
    timeout: 5s
    route:
    - destination: {host: cart-api, port: {number: 8080}}
`
	out := renderConfig(t, appAt("2.0")+gw, "stage: \"10\"\nworkloads:\n  cart:\n    match:\n    - headers: {end-user: {exact: jason}}\n")
	vs := find(t, out, "VirtualService", "shop-ingress")
	if got := strings.Join(routeNames(t, vs), ","); got != "cart-match,cart" {
		t.Fatalf("routes %s", got)
	}
	wantField(t, vs, "spec.http[0].match[0].uri.prefix", "/cart")
	wantField(t, vs, "spec.http[0].match[0].headers.end-user.exact", "jason")
	wantField(t, vs, "spec.http[0].timeout", "5s")
	wantField(t, vs, "spec.http[0].route[0].destination.port.number", "8080")
	wantField(t, vs, "spec.http[0].route[0].destination.subset", "canary")
}

// A workload's match and the chart route's own match on the same field hold
// together: the example route {uri prefix /api, x-env exact prod} with the
// match {uri exact /api/beta, x-env exact beta} is a route no request takes, not
// one that sends x-env: beta to the canary at 100%.
func TestMatchIntersectsTheRoutesOwn(t *testing.T) {
	chartVS := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart-api}
spec:
  hosts: [cart-api]
  http:
  - name: api
    match:
    - uri: {prefix: /api}
      headers: {x-env: {exact: prod}}
    route:
    - destination: {host: cart-api}
`
	render := func(match string) (string, error) {
		c, err := ParseConfig([]byte("stage: \"10\"\nworkloads:\n  cart:\n    match:\n    - " + match + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		var o Options
		if err := c.Apply(&o); err != nil {
			t.Fatal(err)
		}
		res, err := Render([]byte(appAt("2.0")+chartVS), o)
		return string(res.Manifest), err
	}
	for _, tt := range []struct {
		match string
		// want is the extra route's match (JSON of the first one), "" for no extra
		// route at all; or the error it must give.
		want, err string
	}{
		{match: `{uri: {exact: /api/beta}, headers: {x-env: {exact: beta}}}`, want: ""},
		{match: `{uri: {exact: /api/beta}, headers: {x-env: {exact: prod}}}`, want: `{"headers":{"x-env":{"exact":"prod"}},"uri":{"exact":"/api/beta"}}`},
		{match: `{uri: {prefix: /api/v2}}`, want: `{"headers":{"x-env":{"exact":"prod"}},"uri":{"prefix":"/api/v2"}}`},
		{match: `{uri: {prefix: /ap}}`, want: `{"headers":{"x-env":{"exact":"prod"}},"uri":{"prefix":"/api"}}`},
		{match: `{uri: {prefix: /web}}`, want: ""},
		{match: `{uri: {exact: /api/v1}, headers: {X-Env: {regex: "pr.d"}}}`, want: `{"headers":{"x-env":{"exact":"prod"}},"uri":{"exact":"/api/v1"}}`},
		{match: `{headers: {x-env: {}, end-user: {exact: jason}}}`, want: `{"headers":{"end-user":{"exact":"jason"},"x-env":{"exact":"prod"}},"uri":{"prefix":"/api"}}`},
		{match: `{method: {exact: POST}, port: 8080}`, want: `{"headers":{"x-env":{"exact":"prod"}},"method":{"exact":"POST"},"port":8080,"uri":{"prefix":"/api"}}`},
		{match: `{uri: {regex: "/api/v[0-9]+"}}`, err: `uri: prefix "/api" and regex "/api/v[0-9]+" cannot both be required`},
		{match: `{headers: {x-env: {prefix: pr}}}`, want: `{"headers":{"x-env":{"exact":"prod"}},"uri":{"prefix":"/api"}}`},
	} {
		out, err := render(tt.match)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "VirtualService cart-api") || out != "" {
				t.Errorf("match %s: err %v, want one naming the VirtualService and saying %q, and no output", tt.match, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("match %s: %v", tt.match, err)
			continue
		}
		vs := find(t, out, "VirtualService", "cart-api")
		names := strings.Join(routeNames(t, vs), ",")
		if tt.want == "" {
			if names != "api" {
				t.Errorf("match %s: routes %s, want only api (no request holds both)", tt.match, names)
			}
			continue
		}
		if names != "api-match,api" {
			t.Errorf("match %s: routes %s, want api-match,api", tt.match, names)
			continue
		}
		m, _ := yaml.NewRNode(lookup(vs.YNode(), "spec", "http").Content[0]).Pipe(yaml.Lookup("match"))
		got, _ := yaml.NewRNode(m.YNode().Content[0]).MarshalJSON()
		if string(got) != tt.want || len(m.YNode().Content) != 1 {
			t.Errorf("match %s: extra route matches %s (%d), want %s", tt.match, got, len(m.YNode().Content), tt.want)
		}
	}
}

func TestStickyMirrorGateway(t *testing.T) {
	cfg := "stage: \"10\"\nworkloads:\n  cart:\n    sticky: {cookie: cv, maxAge: 60}\n    mirror: {percent: 5}\n    gateway: {name: shop-gw, hosts: [shop.example.com], create: true}\n"
	out := renderConfig(t, appAt("2.0"), cfg)
	vs := find(t, out, "VirtualService", "cart-api")
	regex := get(t, vs, "spec.http[0].match[0].headers.cookie.regex")
	cookie := get(t, vs, "spec.http[1].route[1].headers.response.add.Set-Cookie")
	value := strings.TrimSuffix(strings.TrimPrefix(cookie, "cv="), "; Path=/; Max-Age=60")
	if !strings.Contains(regex, "cv="+value) || len(value) != 8 {
		t.Errorf("sticky route regex %q does not match the cookie the canary sets (%q)", regex, cookie)
	}
	wantField(t, vs, "spec.http[1].mirror.subset", "canary")
	wantField(t, vs, "spec.http[1].mirrorPercentage.value", "5")
	wantField(t, vs, "spec.gateways", "- shop-gw\n- mesh")
	wantField(t, vs, "spec.hosts", "- cart-api\n- shop.example.com")
	find(t, out, "Gateway", "shop-gw")
	if strings.Contains(out, "!!float") {
		t.Error("floats written with an explicit tag")
	}
	// A new canary version gets a new cookie value.
	other := find(t, renderConfig(t, appAt("3.0"), cfg), "VirtualService", "cart-api")
	if get(t, other, "spec.http[0].match[0].headers.cookie.regex") == regex {
		t.Error("the sticky cookie survives a new canary version")
	}
}

// Seed 002: the gateway tags users; each workload routes its own tag.
func TestUserPercent(t *testing.T) {
	cfg := "stage: \"10\"\nworkloads:\n  cart:\n    userPercent: {header: x-user-id}\n"
	out := renderConfig(t, appAt("2.0"), cfg)
	vs := find(t, out, "VirtualService", "cart-api")
	if got := strings.Join(routeNames(t, vs), ","); got != "helm-canary-users-canary,helm-canary-users-production,<default>" {
		t.Fatalf("routes %s", got)
	}
	match := lookup(vs.YNode(), "spec", "http").Content[0]
	if got := lookup(field(match, "match").Content[0], "headers", "x-canary-cart.default", "exact"); got == nil || got.Value != "canary" {
		t.Errorf("the first route does not match x-canary-cart.default: canary")
	}
	f := find(t, out, "EnvoyFilter", "cart.default.canary-users")
	wantField(t, f, "metadata.namespace", "istio-system")
	if got := f.GetAnnotations()[AnnotationCanaryPercent]; got != "10" {
		t.Errorf("percent annotation %q", got)
	}
	if !strings.Contains(get(t, f, "spec.configPatches[0].patch.value.typed_config.inlineCode"), "< 10 then") {
		t.Error("the filter's Lua does not carry the percentage")
	}
	asm := renderConfig(t, appAt("2.0"), "mesh: asm\n"+cfg)
	wp := find(t, asm, "WasmPlugin", "cart.default.hash-tagging")
	wantField(t, wp, "spec.pluginConfig.rules[0].tagHeader", "x-canary-cart.default")
	wantField(t, wp, "spec.pluginConfig.rules[0].policies[0].range", "10")
	wantField(t, find(t, asm, "ASMHeaderPropagation", "cart-tag-propagation"), "spec.headerPrefixes[0]", "x-canary")
	if strings.Contains(renderConfig(t, appAt("2.0"), "stage: stable\nworkloads:\n  cart:\n    userPercent: {header: x-user-id}\n"), "EnvoyFilter") {
		t.Error("the tagging filter outlives the canary")
	}
}

// The gateway's Lua and UserBucket agree: the generated filter code runs in LuaJIT
// (Envoy's Lua) with a stand-in for Envoy's request handle.
func TestLuaHashMatchesGo(t *testing.T) {
	luajit, err := exec.LookPath("luajit")
	if err != nil {
		t.Fatal("luajit is not installed (Debian: apt-get install luajit; `make testbin` does it)")
	}
	ids := []string{"0001", "0002", "0003", "0004", "0005", "jason", "", "a", "user@gmail.com", "ünïcode-ïd", strings.Repeat("z", 300)}
	for i := 0; i < 200; i++ {
		ids = append(ids, fmt.Sprintf("user-%d", i))
	}
	var script strings.Builder
	script.WriteString(userLua("x-user-id", "x-canary-cart", 37))
	script.WriteString(`
local function run(id)
  local h = {}
  if id ~= "" then h["x-user-id"] = id end
  h["x-canary-cart"] = "spoofed"
  local headers = {
    get = function(_, k) return h[k] end,
    replace = function(_, k, v) h[k] = v end,
    remove = function(_, k) h[k] = nil end,
  }
  envoy_on_request({ headers = function() return headers end })
  return tostring(h["x-canary-cart"])
end
`)
	for _, id := range ids {
		fmt.Fprintf(&script, "print(run(%q))\n", id)
	}
	out, err := exec.Command(luajit, "-e", script.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("luajit: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(ids) {
		t.Fatalf("luajit printed %d lines for %d ids:\n%s", len(lines), len(ids), out)
	}
	canary := 0
	for i, id := range ids {
		want := "production"
		switch {
		case id == "":
			want = "nil" // no user: any tag the client sent is removed
		case UserBucket(id) < 37:
			want = "canary"
			canary++
		}
		if lines[i] != want {
			t.Errorf("id %q: Lua tagged %s, Go says %s (bucket %d)", id, lines[i], want, UserBucket(id))
		}
	}
	if canary == 0 || canary == len(ids)-1 {
		t.Errorf("%d of %d ids on the canary: the test does not exercise both sides", canary, len(ids))
	}
}

// A root VirtualService whose http routes are delegated: the warning names the
// delegate this release does not render, and says that its routes are not split,
// instead of claiming the routes go to other hosts or subsets. A delegate the
// release renders is weighted like any VirtualService: no warning.
func TestDelegatingVirtualServiceWarning(t *testing.T) {
	root := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart-root}
spec:
  hosts: [cart-api]
  http:
  - match: [{uri: {prefix: /cart}}]
    delegate: {name: cart-routes, namespace: cart-team}
`
	delegate := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart-routes, namespace: cart-team}
spec:
  http:
  - route:
    - destination: {host: cart-api.shop.svc.cluster.local}
`
	res, err := Render([]byte(appAt("2.0")+root), Options{Stage: mustStage(t, "10"), Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(res.Warnings, "\n")
	if !strings.Contains(got, "VirtualService cart-root delegates its http routes for host cart-api to VirtualService cart-team/cart-routes, which this release does not render: helm-canary cannot weight its routes, so the traffic they take is not split between Deployment cart's production and canary") ||
		strings.Contains(got, "other hosts or subsets") {
		t.Errorf("warnings for a root VirtualService delegating outside the release:\n%s", got)
	}

	res, err = Render([]byte(appAt("2.0")+root+delegate), Options{Stage: mustStage(t, "10"), Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("a delegate rendered in the release is weighted, yet warnings:\n%s", strings.Join(res.Warnings, "\n"))
	}
	vs := find(t, string(res.Manifest), "VirtualService", "cart-routes")
	if w := weights(t, vs, 0); w["production"] != "90" || w["canary"] != "10" {
		t.Errorf("rendered delegate's route weights = %v, want 90/10", w)
	}
	if c := count(t, string(res.Manifest), "VirtualService"); c != 2 {
		t.Errorf("%d VirtualServices, want the root and its delegate only", c)
	}
}

// tcp and tls routes of a chart's VirtualService are weighted like http ones
// (issue 9): no warning then. Routes that reach other hosts are warned about, in
// words that cover tcp and tls routes too.
func TestL4RoutesOfAChartVirtualServiceWarnings(t *testing.T) {
	tlsVS := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: kv-routes
  namespace: cache
spec:
  hosts: [kv.cache.svc.cluster.local]
  tls:
  - match:
    - port: 6380
      sniHosts: [kv.cache.svc.cluster.local]
    route:
    - destination: {host: kv.cache.svc.cluster.local, port: {number: 6380}}
`
	for _, tc := range []struct {
		name, ports, vs, section string
	}{
		{"tcp", "  - name: tcp-redis\n    port: 6379\n", kvVirtualService, "tcp"},
		{"tls", "  - name: tls-redis\n    port: 6380\n", tlsVS, "tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Render([]byte(kvChart(tc.ports, tc.vs)), Options{Stage: mustStage(t, "10")})
			if err != nil {
				t.Fatal(err)
			}
			// (A TLS port is warned about connections with another SNI: true, and
			// not about this.)
			if got := strings.Join(res.Warnings, "\n"); strings.Contains(got, "sends no traffic") || strings.Contains(got, "VirtualService kv-routes") {
				t.Errorf("weighted %s route, yet warnings:\n%s", tc.section, got)
			}
			if w, _ := routeWeights(t, find(t, string(res.Manifest), "VirtualService", "kv-routes"), tc.section, 0); w["production"] != "90" || w["canary"] != "10" {
				t.Errorf("%s route weights %v, want 90/10", tc.section, w)
			}
			// The same route to another host: nothing for kv's pods.
			elsewhere := strings.ReplaceAll(tc.vs, "host: kv.cache.svc.cluster.local", "host: kv-legacy")
			if elsewhere == tc.vs {
				t.Fatal("fixture: no destination to move")
			}
			res, err = Render([]byte(kvChart(tc.ports, elsewhere)), Options{Stage: mustStage(t, "10")})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(res.Warnings, "\n")
			if !strings.Contains(got, "VirtualService kv-routes sends no traffic for host kv to Deployment kv's pods (its http, tcp and tls routes go to other hosts or subsets)") {
				t.Errorf("%s route elsewhere: warnings\n%s", tc.section, got)
			}
		})
	}
}
