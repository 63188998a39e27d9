package libchart

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// routingCase is one set of routing settings in the canary: block's shape, which
// the post-renderer reads with --config and examples/productpage's library mode reads
// from its values: the same file for both.
type routingCase struct {
	name  string
	block string   // the canary: block's body, without stage and draining
	sets  []string // chart values for both modes (a gateway, say)
	// live is the VirtualService's http route names at the live stages, the
	// weighted route (no name) last; other stages have the weighted route alone.
	live []string
	// filters is the gateway-side objects at the live stages.
	filters []string
}

const (
	matchBlock = `  workloads:
    productpage:
      match:
      - headers: {end-user: {exact: jason}}
      - headers: {cookie: {regex: "^(.*?;\\s*)?(gray=true)(;.*)?$"}}
        uri: {prefix: /productpage}
`
	stickyBlock = `  workloads:
    productpage:
      sticky: {cookie: canary-v, maxAge: 3600}
`
	usersBlock = `  workloads:
    productpage:
      userPercent: {header: x-user-id}
`
	mirrorBlock = `  workloads:
    productpage:
      mirror: {percent: 5}
`
	allBlock = `  workloads:
    productpage:
      match:
      - headers: {x-user-email: {regex: ".*@gmail\\.com"}}
      sticky: {cookie: pp.canary, maxAge: 600}
      userPercent: {header: X-User-Id, tagHeader: X-PP-Side}
      mirror: {percent: 12.5}
`
)

var routingCases = []routingCase{
	{name: "match", block: matchBlock, live: []string{"helm-canary-match", ""}},
	{name: "sticky", block: stickyBlock, live: []string{"helm-canary-sticky", ""}},
	{name: "sticky without max-age", block: `  workloads:
    productpage:
      sticky: {cookie: canary-v}
`, live: []string{"helm-canary-sticky", ""}},
	{name: "userPercent", block: usersBlock,
		live: []string{"helm-canary-users-canary", "helm-canary-users-production", ""}, filters: []string{"EnvoyFilter/productpage.shop.canary-users"}},
	{name: "userPercent with its own ingress", block: usersBlock + `  ingress:
    namespace: edge
    selector: {app: edge-gateway, tier: public}
`, live: []string{"helm-canary-users-canary", "helm-canary-users-production", ""}, filters: []string{"EnvoyFilter/productpage.shop.canary-users"}},
	{name: "userPercent on ASM", block: "  mesh: asm\n" + usersBlock,
		live:    []string{"helm-canary-users-canary", "helm-canary-users-production", ""},
		filters: []string{"ASMHeaderPropagation/productpage-tag-propagation", "WasmPlugin/productpage.shop.hash-tagging"}},
	{name: "mirror", block: mirrorBlock, live: []string{""}},
	{name: "all", block: allBlock,
		live:    []string{"helm-canary-sticky", "helm-canary-match", "helm-canary-users-canary", "helm-canary-users-production", ""},
		filters: []string{"EnvoyFilter/productpage.shop.canary-users"}},
	// With a gateway the plain chart ships its own VirtualService, which the
	// renderer weights; library mode writes the same.
	{name: "all with a gateway", block: allBlock, sets: []string{"gateway.enabled=true,gateway.hosts={bookinfo.example.com}"},
		live:    []string{"helm-canary-sticky", "helm-canary-match", "helm-canary-users-canary", "helm-canary-users-production", ""},
		filters: []string{"EnvoyFilter/productpage.shop.canary-users"}},
	{name: "all on ASM with autoscaling", block: "  mesh: asm\n" + allBlock, sets: []string{"autoscaling.enabled=true"},
		live:    []string{"helm-canary-sticky", "helm-canary-match", "helm-canary-users-canary", "helm-canary-users-production", ""},
		filters: []string{"ASMHeaderPropagation/productpage-tag-propagation", "WasmPlugin/productpage.shop.hash-tagging"}},
}

// atPreview is blue-green's preview in seed 001's values: the canary's pods up
// with the new version, weight 0.
var atPreview = state{"83", "84", 2, 2, 100, 0, false}

// TestLibraryRoutingMatchesRenderer: for each routing setting (match, sticky,
// userPercent on Istio and ASM, mirror, all of them, with a gateway), library mode
// renders the objects `helm template | helm-canary render --config FILE` renders,
// with the same settings file, at every stage: the extras at the live stages
// (preview, 10, 100, swap), none at stable, final's draining step and final.
func TestLibraryRoutingMatchesRenderer(t *testing.T) {
	renderTool := tools(t)[0]
	if !testing.Short() {
		renderTool = helmCLI(t, 3)
	}
	for _, c := range routingCases {
		t.Run(strings.ReplaceAll(c.name, " ", "-"), func(t *testing.T) {
			dir := t.TempDir()
			settings := filepath.Join(dir, "canary.yaml")
			draining := filepath.Join(dir, "draining.yaml")
			for file, extra := range map[string]string{settings: "", draining: "  stage: final\n  draining: true\n"} {
				if err := os.WriteFile(file, []byte("canary:\n"+c.block+extra), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			plain := func(tag string) string {
				return renderTool.mustTemplate(t, exampleChart, renderArgs{valueFiles: []string{settings},
					sets: append([]string{"image.tag=" + tag}, c.sets...)})
			}
			p83, p84 := plain("83"), plain("84")
			r := func(in, production string, args ...string) string {
				return render(t, in, production, args...)
			}
			adopting := r(p83, "", "--config", settings, "--stage", "stable")
			preview := r(p84, adopting, "--config", settings, "--stage", "preview")
			s10 := r(p84, preview, "--config", settings, "--stage", "10")
			s100 := r(p84, s10, "--config", settings, "--stage", "100")
			swap := r(p84, s100, "--config", settings, "--stage", "swap")
			steps := []struct {
				stage    string
				st       state
				file     string
				rendered string
				live     bool
			}{
				{"stable (adopting)", atAdopting, settings, adopting, false},
				{"preview", atPreview, settings, preview, true},
				{"10", at10, settings, s10, true},
				{"100", at100, settings, s100, true},
				{"swap", atSwap, settings, swap, true},
				{"final (draining)", atDraining, draining, r(p84, swap, "--config", draining), false},
				{"final", atFinal, settings, r(p84, swap, "--config", settings, "--stage", "final"), false},
				{"stable (rollback from 10)", atStable, settings, r(p83, s10, "--config", settings, "--stage", "stable"), false},
			}
			for _, s := range steps {
				t.Run(s.stage, func(t *testing.T) {
					want := parseObjects(t, s.rendered)
					wantRoutes, wantFilters := []string{""}, []string(nil)
					if s.live {
						wantRoutes, wantFilters = c.live, c.filters
					}
					// The test's own expectations, so that two empty outputs cannot agree.
					checkRouting(t, "helm-canary render", want, wantRoutes, wantFilters)
					for _, tl := range tools(t) {
						sets := append([]string{s.st.seedSets(productpageImage, productpageImage)}, c.sets...)
						lib := parseObjects(t, tl.mustTemplate(t, exampleChart, renderArgs{valueFiles: []string{s.file}, sets: sets}))
						checkRouting(t, "library mode ("+tl.name+")", lib, wantRoutes, wantFilters)
						compareSets(t, c.name+" at "+s.stage, want, lib,
							"helm template | helm-canary render --config", "library mode ("+tl.name+")")
					}
				})
			}
		})
	}
}

// checkRouting: the VirtualService's http routes have these names in this order, and
// the gateway-side objects are these.
func checkRouting(t *testing.T, what string, set objectSet, routes, filters []string) {
	t.Helper()
	vs := set["VirtualService/product-page-svc"]
	http, _ := vs["spec"].(map[string]any)["http"].([]any)
	var names []string
	for _, r := range http {
		name, _ := r.(map[string]any)["name"].(string)
		names = append(names, name)
	}
	if !reflect.DeepEqual(names, routes) {
		t.Errorf("%s: VirtualService http route names %q, want %q", what, names, routes)
	}
	var got []string
	for _, k := range set.keys() {
		if strings.HasPrefix(k, "EnvoyFilter/") || strings.HasPrefix(k, "WasmPlugin/") || strings.HasPrefix(k, "ASMHeaderPropagation/") {
			got = append(got, k)
		}
	}
	if !reflect.DeepEqual(got, filters) {
		t.Errorf("%s: gateway filter objects %q, want %q", what, got, filters)
	}
}

// TestLibraryRoutingDetails pins what the equivalence alone would not show: the
// sticky cookie's value (the renderer's FNV-1a of the name and the canary's images,
// which canary-lib computes in template arithmetic) changes with the canary's image,
// and the gateway filter's Lua carries the stage's percentage.
func TestLibraryRoutingDetails(t *testing.T) {
	tl := tools(t)[0]
	dir := t.TempDir()
	settings := filepath.Join(dir, "canary.yaml")
	if err := os.WriteFile(settings, []byte("canary:\n"+allBlock), 0o644); err != nil {
		t.Fatal(err)
	}
	cookie := func(st state) string {
		set := parseObjects(t, tl.mustTemplate(t, exampleChart, renderArgs{valueFiles: []string{settings},
			sets: []string{st.seedSets(productpageImage, productpageImage)}}))
		http := set["VirtualService/product-page-svc"]["spec"].(map[string]any)["http"].([]any)
		weighted := http[len(http)-1].(map[string]any)["route"].([]any)
		headers, _ := weighted[1].(map[string]any)["headers"].(map[string]any)
		add, _ := headers["response"].(map[string]any)["add"].(map[string]any)
		return fmt.Sprint(add["Set-Cookie"])
	}
	c84 := cookie(at10)
	c85 := cookie(state{"83", "85", 2, 2, 90, 10, false})
	if !strings.HasPrefix(c84, "pp.canary=") || !strings.HasSuffix(c84, "; Path=/; Max-Age=600") || c84 == c85 {
		t.Errorf("sticky cookie for canary 84 %q, for 85 %q: want pp.canary=<version>; Path=/; Max-Age=600, differing by version", c84, c85)
	}

	set := parseObjects(t, tl.mustTemplate(t, exampleChart, renderArgs{valueFiles: []string{settings},
		sets: []string{state{"83", "84", 2, 2, 63, 37, false}.seedSets(productpageImage, productpageImage)}}))
	filter := set["EnvoyFilter/productpage.shop.canary-users"]
	if filter == nil {
		t.Fatal("no EnvoyFilter at stage 37")
	}
	lua := fmt.Sprint(filter["spec"].(map[string]any)["configPatches"].([]any)[0].(map[string]any)["patch"].(map[string]any)["value"].(map[string]any)["typed_config"].(map[string]any)["inlineCode"])
	for _, want := range []string{"-- helm-canary: 37% of users tagged canary (the headers are in the annotations)\n", `headers:get("x-user-id")`, `if helm_canary_bucket(id) < 37 then`, `headers:replace("x-pp-side", "canary")`} {
		if !strings.Contains(lua, want) {
			t.Errorf("the gateway filter's Lua lacks %q:\n%s", want, lua)
		}
	}
	if ns := filter["metadata"].(map[string]any)["namespace"]; ns != "istio-system" {
		t.Errorf("EnvoyFilter namespace %v, want istio-system", ns)
	}
}

// TestLibraryRoutingWithChartRoute: a chart whose own route has a name, matches,
// a timeout, retries and a mirror of its own, and a pod with a sidecar. The renderer
// copies that route into each extra route (matches intersected pair by pair: the
// match's /web/beta narrows the route's /web prefix, and its x-a: 2 cannot meet the
// route's x-a: 1, so that pair is left out; its mirror
// dropped there and replaced on the weighted route) and takes every container's
// image into the sticky cookie; canary-lib, given the same route as httpRoute,
// renders the same. The chart is built in a temporary directory around
// charts/canary-lib itself (not the vendored copy).
func TestLibraryRoutingWithChartRoute(t *testing.T) {
	chart := webChart(t)
	settings := filepath.Join(t.TempDir(), "canary.yaml")
	if err := os.WriteFile(settings, []byte(`canary:
  workloads:
    web:
      match:
      - uri: {exact: /web/beta}
        headers: {end-user: {exact: jason}, x-a: {exact: "2"}}
      sticky: {cookie: web-canary, maxAge: 60}
      userPercent: {header: x-user-id}
      mirror: {percent: 50}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	sides := func(prodTag, canaryTag string, canaryReplicas, canaryWeight int) string {
		return fmt.Sprintf("library=true,sides.production.image.repository=web,sides.production.image.tag=%s,sides.production.replicaCount=2,"+
			"sides.canary.image.tag=%s,sides.canary.replicaCount=%d,sides.canary.weight=%d", prodTag, canaryTag, canaryReplicas, canaryWeight)
	}

	renderTool := tools(t)[0]
	if !testing.Short() {
		renderTool = helmCLI(t, 3)
	}
	plain := func(tag string) string {
		return renderTool.mustTemplate(t, chart, renderArgs{valueFiles: []string{settings}, sets: []string{"tag=" + tag}})
	}
	p1, p2 := plain("1"), plain("2")
	adopting := render(t, p1, "", "--config", settings, "--stage", "stable")
	s10 := render(t, p2, adopting, "--config", settings, "--stage", "10")
	swap := render(t, p2, s10, "--config", settings, "--stage", "swap")
	extras := []string{"web-sticky", "web-match", "web-users-canary", "web-users-production", "web"}
	steps := []struct {
		stage, rendered, sets string
		routes                []string
	}{
		{"10", s10, sides("1", "2", 2, 10), extras},
		{"swap", swap, sides("2", "2", 2, 100), extras},
		{"stable (rollback from 10)", render(t, p1, s10, "--config", settings, "--stage", "stable"), sides("1", "1", 0, 0), []string{"web"}},
	}
	for _, s := range steps {
		t.Run(s.stage, func(t *testing.T) {
			want := parseObjects(t, s.rendered)
			for _, tl := range tools(t) {
				lib := parseObjects(t, tl.mustTemplate(t, chart, renderArgs{valueFiles: []string{settings}, sets: []string{s.sets}}))
				vs := lib["VirtualService/web"]
				var names []string
				for _, r := range vs["spec"].(map[string]any)["http"].([]any) {
					names = append(names, fmt.Sprint(r.(map[string]any)["name"]))
				}
				if !reflect.DeepEqual(names, s.routes) {
					t.Errorf("library mode (%s): http route names %q, want %q", tl.name, names, s.routes)
				}
				compareSets(t, "the chart's own route at "+s.stage, want, lib,
					"helm template | helm-canary render --config", "library mode ("+tl.name+")")
			}
		})
	}
}

// TestLibraryMatchIntersection: a workload's match and the chart route's own (webChart:
// uri prefix /web, or header x-a: 1) on the same fields. canary-lib intersects them
// as the renderer does: narrowed, added, a pair no request satisfies left out, the
// extra route dropped when no pair is left, and the same refusal where Istio cannot
// say both.
func TestLibraryMatchIntersection(t *testing.T) {
	chart := webChart(t)
	renderTool := tools(t)[0]
	for _, c := range []struct {
		match  string
		routes []string // the library's http route names, the weighted route last
		err    string
	}{
		{match: `{uri: {exact: /web/beta}, headers: {x-a: {exact: "1"}}}`, routes: []string{"web-match", "web"}},
		{match: `{uri: {prefix: /web/v2}, headers: {X-A: {regex: "[0-9]"}}}`, routes: []string{"web-match", "web"}},
		{match: `{uri: {exact: /api}, headers: {x-a: {exact: "2"}}}`, routes: []string{"web"}},
		{match: `{headers: {x-a: {}}, method: {exact: POST}, port: 8080}`, routes: []string{"web-match", "web"}},
		{match: `{uri: {regex: "/web/v[0-9]+"}}`, err: `uri: prefix "/web" and regex "/web/v[0-9]+" cannot both be required in one Istio match`},
	} {
		t.Run(c.match, func(t *testing.T) {
			settings := filepath.Join(t.TempDir(), "canary.yaml")
			if err := os.WriteFile(settings, []byte("canary:\n  workloads:\n    web:\n      match:\n      - "+c.match+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			sets := []string{"library=true,sides.production.image.repository=web,sides.production.image.tag=1,sides.production.replicaCount=2," +
				"sides.canary.image.tag=2,sides.canary.replicaCount=2,sides.canary.weight=10"}
			if c.err != "" {
				_, err := renderTool.template(t, chart, renderArgs{valueFiles: []string{settings}, sets: sets})
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "httpRoute web") {
					t.Errorf("library mode: err %v, want one naming httpRoute web and saying %q", err, c.err)
				}
				in := renderTool.mustTemplate(t, chart, renderArgs{valueFiles: []string{settings}, sets: []string{"tag=2"}})
				cmd := exec.Command(canaryBinary, "render", "--config", settings, "--stage", "10")
				cmd.Stdin = strings.NewReader(in)
				out, err := cmd.CombinedOutput()
				if err == nil || !strings.Contains(string(out), c.err) {
					t.Errorf("helm-canary render: %v, want it to say %q:\n%s", err, c.err, out)
				}
				return
			}
			p1 := renderTool.mustTemplate(t, chart, renderArgs{valueFiles: []string{settings}, sets: []string{"tag=1"}})
			p2 := renderTool.mustTemplate(t, chart, renderArgs{valueFiles: []string{settings}, sets: []string{"tag=2"}})
			want := parseObjects(t, render(t, p2, render(t, p1, "", "--config", settings, "--stage", "stable"), "--config", settings, "--stage", "10"))
			lib := parseObjects(t, renderTool.mustTemplate(t, chart, renderArgs{valueFiles: []string{settings}, sets: sets}))
			var names []string
			for _, r := range lib["VirtualService/web"]["spec"].(map[string]any)["http"].([]any) {
				names = append(names, fmt.Sprint(r.(map[string]any)["name"]))
			}
			if !reflect.DeepEqual(names, c.routes) {
				t.Errorf("library mode: http route names %q, want %q", names, c.routes)
			}
			compareSets(t, "match "+c.match, want, lib, "helm template | helm-canary render --config", "library mode")
		})
	}
}

// webChart writes a chart "web" that renders either plain objects (a Deployment with
// a sidecar, a Service, a VirtualService whose route has a name, matches, a timeout,
// retries and a mirror) or, with library=true, the same through canary-lib, with
// that route as httpRoute and the routing settings of canary.workloads.web (or
// routing, as is). charts/canary-lib itself is its subchart, not the vendored copy.
func webChart(t *testing.T) string {
	t.Helper()
	chart := filepath.Join(t.TempDir(), "web")
	copyDir(t, libraryChart, filepath.Join(chart, "charts", "canary-lib"))
	files := map[string]string{
		"Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"values.yaml": "library: false\ntag: \"1\"\nsides: {}\n",
		"templates/_pod.tpl": `{{- define "web.pod" -}}
containers:
  - name: web
    image: {{ .image | quote }}
    ports:
      - containerPort: 8080
  - name: proxy
    image: busybox:1.36
{{- end -}}
`,
		"templates/app.yaml": `apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports: [{port: 8080, targetPort: 8080}]
{{- $route := dict "name" "web" "timeout" "5s" "retries" (dict "attempts" 3) "mirror" (dict "host" "shadow")
      "match" (list (dict "uri" (dict "prefix" "/web")) (dict "headers" (dict "x-a" (dict "exact" "1")))) }}
{{- if .Values.library }}
---
{{ include "canary-lib.all" (dict "root" . "name" "web" "serviceName" "web" "servicePort" 8080
      "servicePorts" (list (dict "port" 8080 "targetPort" 8080))
      "selectorLabels" (dict "app" "web") "labels" (dict "app" "web") "podSpecTemplate" "web.pod"
      "production" .Values.sides.production "canary" .Values.sides.canary "httpRoute" $route
      "mesh" .Values.mesh
      "routing" (.Values.routing | default (pick (dig "workloads" "web" dict (.Values.canary | default dict)) "match" "sticky" "userPercent" "mirror"))) }}
{{- else }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      {{- include "web.pod" (dict "image" (printf "web:%v" .Values.tag)) | nindent 6 }}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: web
  labels: {app: web}
spec:
  hosts: [web]
  http:
  - {{- toYaml (set (deepCopy $route) "route" (list (dict "destination" (dict "host" "web" "port" (dict "number" 8080))))) | nindent 4 }}
{{- end }}
`,
	}
	writeFiles(t, chart, files)
	return chart
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLibraryRoutingChecks: canary-lib refuses malformed routing settings with a
// message naming the value (here without a schema in front of it), and draining
// with traffic on the canary.
func TestLibraryRoutingChecks(t *testing.T) {
	chart := webChart(t)
	base := "library=true,sides.production.image.repository=web,sides.production.image.tag=1,sides.canary.image.tag=2,sides.canary.replicaCount=2,sides.canary.weight=10"
	cases := []struct {
		name string
		sets []string
		want []string
	}{
		{"sticky without a cookie", []string{"routing.sticky.maxAge=60"}, []string{"routing.sticky needs a cookie name"}},
		{"sticky maxAge negative", []string{"routing.sticky.cookie=c,routing.sticky.maxAge=-1"}, []string{"routing.sticky.maxAge must not be negative"}},
		{"userPercent without a header", []string{"routing.userPercent.tagHeader=x-side"}, []string{"routing.userPercent needs the header that identifies a user"}},
		{"mirror above 100", []string{"routing.mirror.percent=150"}, []string{"routing.mirror.percent 150 must be between 0 and 100"}},
		{"mirror not a number", []string{"routing.mirror.percent=five"}, []string{"routing.mirror.percent must be a number", "five"}},
		{"match not a list", []string{"routing.match=jason"}, []string{"routing.match must be a list of Istio HTTPMatchRequests"}},
		{"match item not a dict", []string{"routing.match={jason}"}, []string{"routing.match[0] must be an Istio HTTPMatchRequest"}},
		{"unknown routing key", []string{"routing.mtach[0].uri.prefix=/"}, []string{"routing.mtach: unknown key"}},
		{"mesh", []string{"mesh=linkerd"}, []string{`mesh "linkerd": use istio or asm`}},
		{"match with an invalid regex", []string{"routing.match[0].headers.end-user.regex=(jason"}, []string{"mustRegexMatch", "error parsing regexp", "(jason"}},
		{"match with an invalid uri regex", []string{"routing.match[0].uri.regex=a**"}, []string{"mustRegexMatch", "error parsing regexp", "**"}},
		{"sticky cookie with attributes", []string{"routing.sticky.cookie=cv=1; Domain=evil.example"}, []string{"routing.sticky.cookie", "is not a cookie name"}},
		{"userPercent header with Lua", []string{"routing.userPercent.header=x-user\nos.execute('id') --"}, []string{"routing.userPercent.header", "is not an HTTP header name"}},
		{"userPercent tagHeader with a quote", []string{`routing.userPercent.header=x-user-id,routing.userPercent.tagHeader=x"); os.execute("id`}, []string{"routing.userPercent.tagHeader", "is not an HTTP header name"}},
	}
	for _, tl := range tools(t) {
		for _, c := range cases {
			t.Run(tl.name+"/"+c.name, func(t *testing.T) {
				_, err := tl.template(t, chart, renderArgs{sets: append([]string{base}, c.sets...)})
				wantError(t, "template", err, c.want)
			})
		}
	}
}

// TestRoutingLive installs library mode with every routing setting at stage 10 on the
// API server (Istio's CRDs), then goes back to stable: the extra routes and the
// gateway filter are there at 10 and gone at stable.
func TestRoutingLive(t *testing.T) {
	helm := helmCLI(t, 3)
	ns := newNamespace(t)
	settings := filepath.Join(t.TempDir(), "canary.yaml")
	// The filter goes to the release's namespace: the test cluster has no istio-system.
	if err := os.WriteFile(settings, []byte("canary:\n"+allBlock+"  ingress: {namespace: "+ns+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	envoyFilters := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1alpha3", Resource: "envoyfilters"}
	for _, step := range []struct {
		name   string
		st     state
		routes []string
	}{
		{"10", at10, []string{"helm-canary-sticky", "helm-canary-match", "helm-canary-users-canary", "helm-canary-users-production", ""}},
		{"stable", atStable, []string{""}},
	} {
		helm.mustRun(t, "upgrade", "--install", "pp", exampleChart, "--namespace", ns, "--values", settings,
			"--set", step.st.seedSets(productpageImage, productpageImage))
		vs := getLive(t, virtualServices, ns, "product-page-svc")
		var names []string
		for _, r := range vs["spec"].(map[string]any)["http"].([]any) {
			name, _ := r.(map[string]any)["name"].(string)
			names = append(names, name)
		}
		if !reflect.DeepEqual(names, step.routes) {
			t.Errorf("at %s: live VirtualService http routes %q, want %q", step.name, names, step.routes)
		}
		client, err := liveClient()
		if err != nil {
			t.Fatal(err)
		}
		list, err := client.Resource(envoyFilters).Namespace(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if step.name == "10" {
			want = 1
		}
		if len(list.Items) != want || (want == 1 && list.Items[0].GetName() != "productpage."+ns+".canary-users") {
			t.Errorf("at %s: %d EnvoyFilters in %s, want %d (productpage.%s.canary-users)", step.name, len(list.Items), ns, want, ns)
		}
	}
}

// TestLibraryTCPAndTLSPorts: a Service with a TCP port, a TLS port and a sniffed
// one. Given servicePorts, library mode renders the tcp and tls routes the
// post-renderer adds to the chart's VirtualService (the same ports, SNI and
// weights), so the two modes stay equal beyond HTTP.
func TestLibraryTCPAndTLSPorts(t *testing.T) {
	chart := webChart(t)
	app := filepath.Join(chart, "templates", "app.yaml")
	data, err := os.ReadFile(app)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "ports: [{port: 8080, targetPort: 8080}]",
		"ports: [{name: tcp-redis, port: 6379}, {name: tls, port: 6380}, {port: 8080, targetPort: 8080}]", 1)
	text = strings.Replace(text, `"servicePorts" (list (dict "port" 8080 "targetPort" 8080))`,
		`"servicePorts" (list (dict "name" "tcp-redis" "port" 6379) (dict "name" "tls" "port" 6380) (dict "port" 8080 "targetPort" 8080))`, 1)
	if text == string(data) {
		t.Fatal("the web chart's Service ports were not found to replace")
	}
	if err := os.WriteFile(app, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(t.TempDir(), "canary.yaml")
	if err := os.WriteFile(settings, []byte("canary: {workloads: {web: {}}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tl := tools(t)[0]
	plain := func(tag string) string {
		return tl.mustTemplate(t, chart, renderArgs{valueFiles: []string{settings}, sets: []string{"tag=" + tag}})
	}
	adopting := render(t, plain("1"), "", "--config", settings, "--stage", "stable")
	s10 := render(t, plain("2"), adopting, "--config", settings, "--stage", "10")
	want := parseObjects(t, s10)
	vs := want["VirtualService/web"]["spec"].(map[string]any)
	if len(vs["tcp"].([]any)) != 2 || len(vs["tls"].([]any)) != 1 {
		t.Fatalf("the post-renderer's VirtualService lacks the tcp and tls routes: %v", vs)
	}
	lib := parseObjects(t, tl.mustTemplate(t, chart, renderArgs{valueFiles: []string{settings}, sets: []string{
		"library=true,sides.production.image.repository=web,sides.production.image.tag=1,sides.production.replicaCount=2," +
			"sides.canary.image.tag=2,sides.canary.replicaCount=2,sides.canary.weight=10"}}))
	for _, section := range []string{"tcp", "tls"} {
		got, _ := json.Marshal(lib["VirtualService/web"]["spec"].(map[string]any)[section])
		exp, _ := json.Marshal(vs[section])
		if string(got) != string(exp) {
			t.Errorf("%s routes differ:\n  library mode:  %s\n  post-renderer: %s", section, got, exp)
		}
	}
}

// writeFiles writes a test chart's files (path relative to dir: content).
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
