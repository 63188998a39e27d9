package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/helm-canary/helm-canary/renderer"
)

// The seeds' scenarios beyond weights, replayed end to end: `helm canary stage` with
// the settings in a values file (-f, under canary:), the live objects read back
// from the API server (Istio's CRDs, strict validation), and the route simulator
// (`helm canary route`) run on the release's manifest and on the live objects.
// The values files are the README's, verbatim.

// Seed 003: reviews v2's canary for the user jason only.
const jasonValues = `canary:
  workloads:
    reviews-v2:
      match:
        - headers:
            end-user:
              exact: jason
`

// Seed 000: blue-green, the preview reached by the cookie gray=true.
const grayValues = `canary:
  workloads:
    productpage:
      match:
        - headers:
            cookie:
              regex: "^(.*?;)?(gray=true)(;.*)?$"
`

// Seed 002: a share of users, by x-user-id, per workload of the chain.
const usersValues = `canary:
  workloads:
    app-a:
      userPercent: {header: x-user-id}
    app-b:
      userPercent: {header: x-user-id}
    app-c:
      userPercent: {header: x-user-id}
`

// Seed 002 on Alibaba ASM: the same, with ASM's own objects.
const usersASMValues = `canary:
  mesh: asm
  workloads:
    app-a:
      userPercent: {header: x-user-id}
    app-b:
      userPercent: {header: x-user-id}
    app-c:
      userPercent: {header: x-user-id}
`

// Seed 004: gmail users on the canary, the others split 9:1.
const gmailValues = `canary:
  workloads:
    productpage:
      match:
        - headers:
            x-user-email:
              regex: ".*@gmail\\.com"
`

// Sticky users and mirroring.
const stickyValues = `canary:
  workloads:
    productpage:
      sticky: {cookie: canary-v, maxAge: 3600}
      mirror: {percent: 5}
`

// A gateway binding, the Gateway created by the release.
const gatewayValues = `canary:
  workloads:
    productpage:
      gateway:
        name: shop-gateway
        hosts: [shop.example.com]
        create: true
`

func bookinfoImage(name, tag string) string {
	return "docker.io/istio/examples-bookinfo-" + name + ":" + tag
}

// TestSeed003HeaderCanary: reviews-v2's new version reaches the user jason only
// (stage 0 with a header match), then the canary ends (stable) and so does the
// match route.
func TestSeed003HeaderCanary(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := filepath.Join(h.checkout, "test", "charts", "bookinfo")
		jason := writeFile(t, "jason.yaml", jasonValues)
		// --no-hooks: bookinfo's smoke-test Job would run at every step
		// (TestIndependentStages runs it); this test is about the routes.
		h.stage(t, ns, "stable", "bi", chart, "--install", "--workload", "reviews-v2", "--no-hooks")
		h.stage(t, ns, "0", "bi", "--workload", "reviews-v2", "-f", jason, "--set", "tag=1.20.3", "--no-hooks")

		wantImages(t, "reviews-v2 at 0", getDeployment(t, ns, "reviews-v2"), bookinfoImage("reviews-v2", "1.20.2"))
		canary := getDeployment(t, ns, "reviews-v2-canary")
		wantImages(t, "reviews-v2-canary at 0", canary, bookinfoImage("reviews-v2", "1.20.3"))
		wantReplicas(t, "reviews-v2-canary at 0", canary, 1)
		subsets := getSubsets(t, ns, "reviews")
		wantLabels(t, "DestinationRule reviews subset canary", subsets["canary"],
			map[string]string{"app": "reviews", "version": "v2", "helm-canary.io/track": "canary"})
		matchRouteAhead(t, ns, "reviews", "end-user", map[string]any{"exact": "jason"})
		for _, r := range httpRoutes(t, ns, "reviews") {
			if isWeighted(r) {
				for _, d := range routeDestinations(r) {
					if d.subset == "canary" && d.weight != 0 {
						t.Errorf("stage 0: the weighted route gives the canary %d%%, want 0", d.weight)
					}
				}
			}
		}

		wantRoutedTo(t, "jason at stage 0", h.route(t, ns, "bi", "--host", "reviews", "-H", "end-user: jason"), "canary")
		other := h.route(t, ns, "bi", "--host", "reviews", "-H", "end-user: alice")
		if other.Subset == "canary" || other.Shares["canary"] != 0 {
			t.Errorf("alice at stage 0: routed to %q (shares %v), want not the canary", other.Subset, other.Shares)
		}
		anonymous := h.route(t, ns, "bi", "--host", "reviews")
		if anonymous.Shares["canary"] != 0 {
			t.Errorf("a request without end-user at stage 0: shares %v, want none to the canary", anonymous.Shares)
		}

		h.stage(t, ns, "stable", "bi", "--workload", "reviews-v2", "--no-hooks")
		noCanaryMatchRoute(t, "stable", ns, "reviews")
		wantReplicas(t, "reviews-v2-canary at stable", getDeployment(t, ns, "reviews-v2-canary"), 0)
		wantImages(t, "reviews-v2 at stable", getDeployment(t, ns, "reviews-v2"), bookinfoImage("reviews-v2", "1.20.2"))
		back := h.route(t, ns, "bi", "--host", "reviews", "-H", "end-user: jason")
		if back.Subset == "canary" || back.Shares["canary"] != 0 {
			t.Errorf("jason at stable: routed to %q (shares %v), want not the canary", back.Subset, back.Shares)
		}
	})
}

// TestSeed000BlueGreenCookie: blue-green with a cookie. The new version is
// previewed (canary pods up, 0% of the traffic) by requests carrying gray=true,
// then takes all the traffic (100), production rolls to it (swap), and the canary
// goes (final).
func TestSeed000BlueGreenCookie(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		gray := writeFile(t, "gray.yaml", grayValues)
		cookie := map[string]any{"regex": "^(.*?;)?(gray=true)(;.*)?$"}
		h.stage(t, ns, "stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83")
		h.stage(t, ns, "preview", "pp", "-f", gray, "--set", "image.tag=84")

		if got := valueAt(h.releaseValues(t, "pp", ns), "canary.stage"); got != "preview" {
			t.Errorf("the release's canary.stage after preview: %q", got)
		}
		wantImages(t, "productpage at preview", getDeployment(t, ns, "productpage"), productpageImage+":83")
		canary := getDeployment(t, ns, "productpage-canary")
		wantImages(t, "productpage-canary at preview", canary, productpageImage+":84")
		wantReplicas(t, "productpage-canary at preview", canary, 2)
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 100, "canary": 0})
		matchRouteAhead(t, ns, "product-page-svc", "cookie", cookie)

		wantRoutedTo(t, "gray=true at preview", h.route(t, ns, "pp", "--host", "product-page-svc", "--cookie", "gray=true"), "canary")
		wantRoutedTo(t, "no cookie at preview", h.route(t, ns, "pp", "--host", "product-page-svc"), "production")
		wantRoutedTo(t, "gray=false at preview", h.route(t, ns, "pp", "--host", "product-page-svc", "--cookie", "gray=false"), "production")
		wantRoutedTo(t, "gray=true after another cookie (no space)", h.route(t, ns, "pp", "--host", "product-page-svc", "-H", "cookie: session=1;gray=true"), "canary")

		h.stage(t, ns, "100", "pp")
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 0, "canary": 100})
		matchRouteAhead(t, ns, "product-page-svc", "cookie", cookie)
		wantRoutedTo(t, "no cookie at 100", h.route(t, ns, "pp", "--host", "product-page-svc"), "canary")

		h.stage(t, ns, "swap", "pp")
		wantImages(t, "productpage at swap", getDeployment(t, ns, "productpage"), productpageImage+":84")
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 0, "canary": 100})

		h.stage(t, ns, "final", "pp", "--drain-time", "0s")
		prod := getDeployment(t, ns, "productpage")
		wantImages(t, "productpage at final", prod, productpageImage+":84")
		wantReplicas(t, "productpage at final", prod, 2)
		wantReplicas(t, "productpage-canary at final", getDeployment(t, ns, "productpage-canary"), 0)
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 100, "canary": 0})
		noCanaryMatchRoute(t, "final", ns, "product-page-svc")
		wantRoutedTo(t, "gray=true at final", h.route(t, ns, "pp", "--host", "product-page-svc", "--cookie", "gray=true"), "production")
	})
}

// seed002Users are user ids (seed 002's style, 0001...) on either side of the
// percentages: one in the first 10 buckets (canary for app-a, app-b and app-c),
// one in 10..49 (canary for app-c only), one at 50 or above (production
// everywhere). The buckets are the gateway filter's hash.
func seed002Users(t *testing.T) (all, cOnly, none string) {
	t.Helper()
	for i := 1; i <= 9999 && (all == "" || cOnly == "" || none == ""); i++ {
		id := fmt.Sprintf("%04d", i)
		switch b := renderer.UserBucket(id); {
		case b < 10 && all == "":
			all = id
		case b >= 10 && b < 50 && cOnly == "":
			cOnly = id
		case b >= 50 && none == "":
			none = id
		}
	}
	return all, cOnly, none
}

// userTagRoutes checks a VirtualService's user-percentage routes: requests tagged
// canary go whole to the canary ahead of the weighted route.
func userTagRoutes(t *testing.T, ns, vs, workload string) {
	t.Helper()
	matchRouteAhead(t, ns, vs, tagHeader(workload, ns), map[string]any{"exact": "canary"})
}

// noUserTagRoutes checks that no route of a VirtualService matches a workload's tag.
func noUserTagRoutes(t *testing.T, what, ns, vs, workload string) {
	t.Helper()
	for i, r := range httpRoutes(t, ns, vs) {
		if headerMatch(r, tagHeader(workload, ns)) != nil {
			t.Errorf("%s: VirtualService %s/%s route #%d still matches %s: %v", what, ns, vs, i, tagHeader(workload, ns), r)
		}
	}
}

// envoyUserFilter checks the live EnvoyFilter that tags a workload's users at the
// ingress gateway: owned by the release in ns, its Lua carrying the percentage.
func envoyUserFilter(t *testing.T, ns, workload string, percent int) {
	t.Helper()
	name := gatewayObject(workload, ns, "canary-users")
	obj := getIstio(t, envoyFilters, ingressNamespace, name)
	a := obj.GetAnnotations()
	if a["meta.helm.sh/release-namespace"] != ns {
		t.Errorf("EnvoyFilter %s/%s belongs to a release in %q, want %q", ingressNamespace, name, a["meta.helm.sh/release-namespace"], ns)
	}
	if a["helm-canary.io/canary-percent"] != fmt.Sprint(percent) || a["helm-canary.io/user-header"] != "x-user-id" || a["helm-canary.io/tag-header"] != tagHeader(workload, ns) {
		t.Errorf("EnvoyFilter %s/%s annotations %v, want %d%% of x-user-id tagged in %s", ingressNamespace, name, a, percent, tagHeader(workload, ns))
	}
	if sel, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "workloadSelector", "labels"); sel["istio"] != "ingressgateway" {
		t.Errorf("EnvoyFilter %s/%s workloadSelector %v, want istio=ingressgateway", ingressNamespace, name, sel)
	}
	patches, _, _ := unstructured.NestedSlice(obj.Object, "spec", "configPatches")
	if len(patches) != 1 {
		t.Fatalf("EnvoyFilter %s/%s: %d config patches, want 1", ingressNamespace, name, len(patches))
	}
	patch, _ := patches[0].(map[string]any)
	lua, _, _ := unstructured.NestedString(patch, "patch", "value", "typed_config", "inlineCode")
	for _, want := range []string{
		fmt.Sprintf("helm_canary_bucket(id) < %d", percent),
		`headers:get("x-user-id")`,
		`headers:replace("` + tagHeader(workload, ns) + `", "canary")`,
	} {
		if !strings.Contains(lua, want) {
			t.Errorf("EnvoyFilter %s/%s Lua lacks %q:\n%s", ingressNamespace, name, want, lua)
		}
	}
	if ctx, _, _ := unstructured.NestedString(patch, "match", "context"); ctx != "GATEWAY" {
		t.Errorf("EnvoyFilter %s/%s applies to %q, want GATEWAY", ingressNamespace, name, ctx)
	}
}

// wasmUserFilter checks ASM's hash-tagging WasmPlugin of a workload and its header
// propagation.
func wasmUserFilter(t *testing.T, ns, workload string, percent int) {
	t.Helper()
	name := gatewayObject(workload, ns, "hash-tagging")
	obj := getIstio(t, wasmPlugins, ingressNamespace, name)
	if got := obj.GetAnnotations()["meta.helm.sh/release-namespace"]; got != ns {
		t.Errorf("WasmPlugin %s/%s belongs to a release in %q, want %q", ingressNamespace, name, got, ns)
	}
	rules, _, _ := unstructured.NestedSlice(obj.Object, "spec", "pluginConfig", "rules")
	if len(rules) != 1 {
		t.Fatalf("WasmPlugin %s/%s: rules %v, want one", ingressNamespace, name, rules)
	}
	rule, _ := rules[0].(map[string]any)
	policies, _, _ := unstructured.NestedSlice(rule, "policies")
	var rng any
	var tag string
	if len(policies) == 1 {
		p, _ := policies[0].(map[string]any)
		rng, tag = p["range"], fmt.Sprint(p["tagValue"])
	}
	if rule["header"] != "x-user-id" || fmt.Sprint(rule["modulo"]) != "100" || rule["tagHeader"] != tagHeader(workload, ns) ||
		fmt.Sprint(rng) != fmt.Sprint(percent) || tag != "canary" {
		t.Errorf("WasmPlugin %s/%s rule %v, want x-user-id modulo 100 into %s, range %d tagged canary", ingressNamespace, name, rule, tagHeader(workload, ns), percent)
	}
	if sel, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "selector", "matchLabels"); sel["istio"] != "ingressgateway" {
		t.Errorf("WasmPlugin %s/%s selector %v, want istio=ingressgateway", ingressNamespace, name, sel)
	}
	if url, _, _ := unstructured.NestedString(obj.Object, "spec", "url"); !strings.Contains(url, "asm-wasm-hash-tagging") {
		t.Errorf("WasmPlugin %s/%s url %q, want ASM's hash-tagging plugin", ingressNamespace, name, url)
	}
	prop := getIstio(t, asmHeaderPropagations, ns, workload+"-tag-propagation")
	prefixes, _, _ := unstructured.NestedStringSlice(prop.Object, "spec", "headerPrefixes")
	if len(prefixes) != 1 || prefixes[0] != "x-canary" {
		t.Errorf("ASMHeaderPropagation %s/%s-tag-propagation headerPrefixes %v, want [x-canary]", ns, workload, prefixes)
	}
}

// TestSeed002UserPercent: per-user percentages across the chain app-a -> app-b ->
// app-c. The app-a/app-b team puts 10% of users on its v2, the app-c team
// independently 50% on its v3; app-c finishes first and its tagging rule goes,
// while app-a and app-b keep theirs. On stock Istio (an EnvoyFilter per workload
// at the ingress gateway) with Helm 3 and Helm 4, and on ASM (its hash-tagging
// WasmPlugin and ASMHeaderPropagation).
func TestSeed002UserPercent(t *testing.T) {
	for _, v := range []struct {
		name   string
		major  int
		values string
		asm    bool
	}{
		{"istio/helm3", 3, usersValues, false},
		{"istio/helm4", 4, usersValues, false},
		{"asm/helm3", 3, usersASMValues, true},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			istioSystem(t)
			if v.asm {
				asmCRD(t)
			}
			// The variants run at once, each in its own namespace, with the same
			// Deployment names: their objects in istio-system must not collide.
			h := newHelmEnv(t, v.major)
			ns := newNamespace(t)
			// Whatever happens, leave nothing in istio-system for the next variant.
			t.Cleanup(func() { _, _, _ = h.run(t, "uninstall", "ac", "-n", ns) })
			chart := filepath.Join(h.checkout, "test", "charts", "appchain")
			users := writeFile(t, "users.yaml", v.values)
			filter := func(workload string, percent int) {
				t.Helper()
				if v.asm {
					wasmUserFilter(t, ns, workload, percent)
				} else {
					envoyUserFilter(t, ns, workload, percent)
				}
			}
			noFilter := func(workload string) {
				t.Helper()
				// The other variant's release (another namespace) may own objects of
				// these names in istio-system meanwhile: none may be this release's.
				notOwned(t, envoyFilters, ingressNamespace, gatewayObject(workload, ns, "canary-users"), ns)
				notOwned(t, wasmPlugins, ingressNamespace, gatewayObject(workload, ns, "hash-tagging"), ns)
				if v.asm {
					absent(t, asmHeaderPropagations, ns, workload+"-tag-propagation")
				}
			}
			version := func(name string) string {
				t.Helper()
				return getDeployment(t, ns, name).PodLabels["version"]
			}
			usersOf := func(host string) routeResult {
				t.Helper()
				return h.route(t, ns, "ac", "--host", host, "--users", "10000", "--user-header", "x-user-id")
			}
			all, cOnly, none := seed002Users(t)

			// Step one: a v1, b v1, c v2, every app at stable.
			h.stage(t, ns, "stable", "ac", chart, "--install")
			// Step two: the a/b team, 10% of users on a v2 and b v2.
			h.stage(t, ns, "10", "ac", "--workload", "app-a", "--workload", "app-b", "-f", users, "--set", "a.tag=v2", "--set", "b.tag=v2")
			// Step three: the c team, independently, 50% of users on c v3.
			h.stage(t, ns, "50", "ac", "--workload", "app-c", "--set", "c.tag=v3")

			for _, w := range []struct {
				name, production, canary string
				percent                  int
			}{{"app-a", "v1", "v2", 10}, {"app-b", "v1", "v2", 10}, {"app-c", "v2", "v3", 50}} {
				if got := version(w.name); got != w.production {
					t.Errorf("%s production runs %s, want %s", w.name, got, w.production)
				}
				// The canary's pods carry their own version label (Kiali's versioned graph).
				if got := version(w.name + "-canary"); got != w.canary+"-canary" {
					t.Errorf("%s canary runs %s, want %s-canary", w.name, got, w.canary)
				}
				filter(w.name, w.percent)
				userTagRoutes(t, ns, w.name, w.name)
				wantWeights(t, ns, w.name, map[string]int64{"production": int64(100 - w.percent), "canary": int64(w.percent)})
				wantShare(t, w.name+": 10000 users", usersOf(w.name), "canary", float64(w.percent)/100, 0.015)
			}
			// The gateway's VirtualService (every host to app-a) matches app-a's tag too.
			userTagRoutes(t, ns, "ingressgateway", "app-a")
			wantShare(t, "10000 users through the gateway", usersOf("shop.example.com"), "canary", 0.10, 0.015)

			// Seed 002's table: each user's path through the chain.
			for _, u := range []struct {
				id      string
				a, b, c string
			}{{all, "canary", "canary", "canary"}, {cOnly, "production", "production", "canary"}, {none, "production", "production", "production"}} {
				for host, want := range map[string]string{"app-a": u.a, "app-b": u.b, "app-c": u.c, "shop.example.com": u.a} {
					wantRoutedTo(t, fmt.Sprintf("user %s (bucket %d) to %s", u.id, renderer.UserBucket(u.id), host),
						h.route(t, ns, "ac", "--host", host, "-H", "x-user-id: "+u.id), want)
				}
			}
			// A client cannot pick its side: without a user id the tag is dropped.
			anonymous := h.route(t, ns, "ac", "--host", "app-a", "-H", tagHeader("app-a", ns)+": canary")
			wantShare(t, "a request tagging itself canary, without x-user-id", anonymous, "canary", 0.10, 1e-9)

			// app-c finishes first: 100, swap, final. Its tagging rule goes; app-a's
			// and app-b's stay.
			h.stage(t, ns, "100", "ac", "--workload", "app-c")
			filter("app-c", 100)
			wantShare(t, "app-c at 100: 10000 users", usersOf("app-c"), "canary", 1, 1e-9)
			h.stage(t, ns, "swap", "ac", "--workload", "app-c")
			if got := version("app-c"); got != "v3" {
				t.Errorf("app-c production at swap runs %s, want v3", got)
			}
			h.stage(t, ns, "final", "ac", "--workload", "app-c", "--drain-time", "0s")
			noFilter("app-c")
			noUserTagRoutes(t, "app-c at final", ns, "app-c", "app-c")
			if got := version("app-c"); got != "v3" {
				t.Errorf("app-c production at final runs %s, want v3", got)
			}
			wantReplicas(t, "app-c-canary at final", getDeployment(t, ns, "app-c-canary"), 0)
			wantWeights(t, ns, "app-c", map[string]int64{"production": 100, "canary": 0})
			wantShare(t, "app-c at final: 10000 users", usersOf("app-c"), "production", 1, 1e-9)
			for _, w := range []string{"app-a", "app-b"} {
				filter(w, 10)
				userTagRoutes(t, ns, w, w)
				wantShare(t, w+" after app-c's final: 10000 users", usersOf(w), "canary", 0.10, 0.015)
				if got := version(w); got != "v1" {
					t.Errorf("%s production after app-c's final runs %s, want v1", w, got)
				}
			}

			// The a/b team rolls back: their rules go too.
			h.stage(t, ns, "stable", "ac", "--workload", "app-a", "--workload", "app-b")
			for _, w := range []string{"app-a", "app-b"} {
				noFilter(w)
				noUserTagRoutes(t, w+" at stable", ns, w, w)
				wantShare(t, w+" at stable: 10000 users", usersOf(w), "production", 1, 1e-9)
			}
			noUserTagRoutes(t, "gateway with app-a at stable", ns, "ingressgateway", "app-a")
		})
	}
}

// TestSeed004EmailUsers: users whose e-mail is at gmail.com get the canary whole;
// everyone else is split 9:1 by weight.
func TestSeed004EmailUsers(t *testing.T) {
	t.Parallel()
	h := newHelmEnv(t, 3)
	ns := newNamespace(t)
	gmail := writeFile(t, "gmail.yaml", gmailValues)
	h.stage(t, ns, "stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83")
	h.stage(t, ns, "10", "pp", "-f", gmail, "--set", "image.tag=84")

	wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})
	matchRouteAhead(t, ns, "product-page-svc", "x-user-email", map[string]any{"regex": `.*@gmail\.com`})
	wantImages(t, "productpage-canary at 10", getDeployment(t, ns, "productpage-canary"), productpageImage+":84")

	wantRoutedTo(t, "a gmail user", h.route(t, ns, "pp", "--host", "product-page-svc", "-H", "x-user-email: jane@gmail.com"), "canary")
	for _, email := range []string{"joe@example.com", "jane@gmail.com.example.org", "jane@gmailxcom"} {
		res := h.route(t, ns, "pp", "--host", "product-page-svc", "-H", "x-user-email: "+email)
		wantShare(t, email, res, "production", 0.9, 1e-9)
		wantShare(t, email, res, "canary", 0.1, 1e-9)
	}
	res := h.route(t, ns, "pp", "--host", "product-page-svc")
	wantShare(t, "no e-mail header", res, "canary", 0.1, 1e-9)
}

// TestStickyMirror: at stage 10 the canary's responses set a cookie that keeps the
// user on the canary, and 5% of the weighted traffic is mirrored to the canary;
// stable ends both.
func TestStickyMirror(t *testing.T) {
	t.Parallel()
	h := newHelmEnv(t, 3)
	ns := newNamespace(t)
	sticky := writeFile(t, "sticky.yaml", stickyValues)
	h.stage(t, ns, "stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83")
	h.stage(t, ns, "10", "pp", "-f", sticky, "--set", "image.tag=84")

	wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})
	routes := httpRoutes(t, ns, "product-page-svc")
	var setCookie string
	cookieAt, weightedAt := -1, -1
	for i, r := range routes {
		if isWeighted(r) && weightedAt < 0 {
			weightedAt = i
			for _, d := range routeDestinations(r) {
				add, _, _ := unstructured.NestedStringMap(d.spec, "headers", "response", "add")
				switch d.subset {
				case "canary":
					setCookie = add["Set-Cookie"]
				default:
					if len(add) > 0 {
						t.Errorf("the production destination adds response headers %v, want none", add)
					}
				}
			}
			mirror, _, _ := unstructured.NestedStringMap(r, "mirror")
			if mirror["host"] != "product-page-svc" || mirror["subset"] != "canary" {
				t.Errorf("weighted route mirror %v, want the canary subset of product-page-svc", mirror)
			}
			if pct, _, _ := unstructured.NestedFieldNoCopy(r, "mirrorPercentage", "value"); fmt.Sprint(pct) != "5" {
				t.Errorf("weighted route mirrorPercentage %v, want 5", pct)
			}
		}
	}
	cookie, _, _ := strings.Cut(setCookie, ";")
	if !strings.HasPrefix(cookie, "canary-v=") || len(cookie) <= len("canary-v=") || !strings.Contains(setCookie, "Max-Age=3600") {
		t.Fatalf("the canary destination's Set-Cookie is %q, want canary-v=VALUE; ...; Max-Age=3600 (routes %v)", setCookie, routes)
	}
	for i, r := range routes {
		if sm := headerMatch(r, "cookie"); sm != nil && wholeTo(r, "canary") && strings.Contains(fmt.Sprint(sm["regex"]), cookie) {
			cookieAt = i
			if _, ok := r["mirror"]; ok {
				t.Errorf("the sticky route mirrors: %v", r)
			}
			break
		}
	}
	if cookieAt < 0 || cookieAt > weightedAt {
		t.Errorf("no route sends the cookie %s to the canary ahead of the weighted route (#%d): %v", cookie, weightedAt, routes)
	}

	wantRoutedTo(t, "the sticky cookie alone", h.route(t, ns, "pp", "--host", "product-page-svc", "--cookie", cookie), "canary")
	res := h.route(t, ns, "pp", "--host", "product-page-svc", "--cookie", "canary-v=stale")
	wantShare(t, "a stale sticky cookie", res, "canary", 0.1, 1e-9)
	t.Run("cookie header as browsers send it", func(t *testing.T) {
		// RFC 6265: cookie-pairs are separated by "; ". A user whose browser holds
		// another cookie before the sticky one must stay on the canary too.
		wantRoutedTo(t, "session=1; "+cookie, h.route(t, ns, "pp", "--host", "product-page-svc", "--cookie", "session=1", "--cookie", cookie), "canary")
	})

	h.stage(t, ns, "stable", "pp")
	wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 100, "canary": 0})
	for i, r := range httpRoutes(t, ns, "product-page-svc") {
		if headerMatch(r, "cookie") != nil || r["mirror"] != nil {
			t.Errorf("stable: route #%d still has the sticky match or the mirror: %v", i, r)
		}
		for _, d := range routeDestinations(r) {
			if _, ok := d.spec["headers"]; ok {
				t.Errorf("stable: route #%d destination %s still sets headers: %v", i, d.subset, d.spec)
			}
		}
	}
	wantRoutedTo(t, "the sticky cookie at stable", h.route(t, ns, "pp", "--host", "product-page-svc", "--cookie", cookie), "production")
}

// TestGatewayBinding: the VirtualService serves shop.example.com on the Gateway
// shop-gateway (created by the release) as well as the mesh.
func TestGatewayBinding(t *testing.T) {
	t.Parallel()
	h := newHelmEnv(t, 3)
	ns := newNamespace(t)
	gw := writeFile(t, "gateway.yaml", gatewayValues)
	h.stage(t, ns, "stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83")
	h.stage(t, ns, "10", "pp", "-f", gw, "--set", "image.tag=84")
	wantGatewayBound(t, ns)
	wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})
	for _, host := range []string{"shop.example.com", "product-page-svc"} {
		res := h.route(t, ns, "pp", "--host", host)
		if res.VirtualService != "product-page-svc" {
			t.Errorf("%s: routed by VirtualService %q, want product-page-svc", host, res.VirtualService)
		}
		wantShare(t, host, res, "production", 0.9, 1e-9)
		wantShare(t, host, res, "canary", 0.1, 1e-9)
	}

	// The binding stays through the walk.
	h.stage(t, ns, "100", "pp")
	h.stage(t, ns, "swap", "pp")
	h.stage(t, ns, "final", "pp", "--drain-time", "0s")
	wantGatewayBound(t, ns)
	wantRoutedTo(t, "shop.example.com at final", h.route(t, ns, "pp", "--host", "shop.example.com"), "production")
}

// wantGatewayBound checks the live Gateway shop-gateway and the VirtualService
// product-page-svc bound to it and to the mesh.
func wantGatewayBound(t *testing.T, ns string) {
	t.Helper()
	g := getIstio(t, gateways, ns, "shop-gateway")
	servers, _, _ := unstructured.NestedSlice(g.Object, "spec", "servers")
	if len(servers) != 1 {
		t.Fatalf("Gateway %s/shop-gateway servers %v, want one", ns, servers)
	}
	server, _ := servers[0].(map[string]any)
	hosts, _, _ := unstructured.NestedStringSlice(server, "hosts")
	port, _, _ := unstructured.NestedInt64(server, "port", "number")
	if strings.Join(hosts, ",") != "shop.example.com" || port != 80 {
		t.Errorf("Gateway %s/shop-gateway server hosts %v port %d, want [shop.example.com] 80", ns, hosts, port)
	}
	if sel, _, _ := unstructured.NestedStringMap(g.Object, "spec", "selector"); sel["istio"] != "ingressgateway" {
		t.Errorf("Gateway %s/shop-gateway selector %v, want istio=ingressgateway", ns, sel)
	}
	vs := getIstio(t, virtualServices, ns, "product-page-svc")
	gws, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "gateways")
	if !sameSet(gws, []string{"shop-gateway", "mesh"}) {
		t.Errorf("VirtualService %s/product-page-svc gateways %v, want [shop-gateway mesh]", ns, gws)
	}
	vsHosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
	if !sameSet(vsHosts, []string{"product-page-svc", "shop.example.com"}) {
		t.Errorf("VirtualService %s/product-page-svc hosts %v, want [product-page-svc shop.example.com]", ns, vsHosts)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestSeed002TeamsOwnValues: seed 002's teams each bring their own values file.
// The a/b team's file names app-a and app-b only; app-c, canaried by default at
// stable, must stay as it was (its canary Deployment, routing and production pod
// template untouched) while the a/b team moves.
func TestSeed002TeamsOwnValues(t *testing.T) {
	t.Parallel()
	istioSystem(t)
	h := newHelmEnv(t, 3)
	ns := newNamespace(t)
	t.Cleanup(func() { _, _, _ = h.run(t, "uninstall", "ac", "-n", ns) })
	chart := filepath.Join(h.checkout, "test", "charts", "appchain")
	ab := writeFile(t, "ab-users.yaml", `canary:
  workloads:
    app-a:
      userPercent: {header: x-user-id}
    app-b:
      userPercent: {header: x-user-id}
`)
	h.stage(t, ns, "stable", "ac", chart, "--install")
	before := getDeployment(t, ns, "app-c")
	h.stage(t, ns, "10", "ac", "--workload", "app-a", "--workload", "app-b", "-f", ab, "--set", "a.tag=v2", "--set", "b.tag=v2")

	envoyUserFilter(t, ns, "app-a", 10)
	after := getDeployment(t, ns, "app-c")
	wantLabels(t, "app-c production pod labels after the a/b team's stage 10", after.PodLabels, before.PodLabels)
	if _, err := clients(t).kube.AppsV1().Deployments(ns).Get(t.Context(), "app-c-canary", metav1.GetOptions{}); err != nil {
		t.Errorf("app-c-canary after the a/b team's stage 10: %v", err)
	}
	if got := valueAt(h.releaseValues(t, "ac", ns), "canary.workloads.app-c"); got == "" {
		t.Errorf("the release's canary.workloads no longer names app-c: %v", h.releaseValues(t, "ac", ns)["canary"])
	}
	wantWeights(t, ns, "app-c", map[string]int64{"production": 100, "canary": 0})
}

// TestGatewayFromInstallValues: settings under canary: in a values file given at
// install time are kept, as they are at any later stage.
func TestGatewayFromInstallValues(t *testing.T) {
	t.Parallel()
	h := newHelmEnv(t, 3)
	ns := newNamespace(t)
	gw := writeFile(t, "gateway.yaml", gatewayValues)
	h.stage(t, ns, "stable", "pp", h.chartDir(), "--install", "-f", gw, "--set", "image.tag=83")
	if got := valueAt(h.releaseValues(t, "pp", ns), "canary.workloads.productpage.gateway.name"); got != "shop-gateway" {
		t.Errorf("after install -f gateway.yaml the release's canary block is %v, want the gateway kept", h.releaseValues(t, "pp", ns)["canary"])
	}
	h.stage(t, ns, "10", "pp", "--set", "image.tag=84")
	wantGatewayBound(t, ns)
}

// TestSeed002MeshFromCommandLine: a release-level setting under canary: given on
// the command line (--set canary.mesh=asm) while one workload moves alone.
func TestSeed002MeshFromCommandLine(t *testing.T) {
	t.Parallel()
	h := newHelmEnv(t, 3)
	ns := newNamespace(t)
	chart := filepath.Join(h.checkout, "test", "charts", "appchain")
	h.stage(t, ns, "stable", "ac", chart, "--install")
	if _, stderr, err := h.run(t, "canary", "stage", "-n", ns, "10", "ac", "--workload", "app-a", "--set", "canary.mesh=asm", "--set", "a.tag=v2"); err != nil {
		t.Fatalf("stage 10 --workload app-a --set canary.mesh=asm: %v", firstLines(stderr, 8))
	}
	wantWeights(t, ns, "app-a", map[string]int64{"production": 90, "canary": 10})
	wantWeights(t, ns, "app-c", map[string]int64{"production": 100, "canary": 0})
	if got := valueAt(h.releaseValues(t, "ac", ns), "canary.mesh"); got != "asm" {
		t.Errorf("the release's canary.mesh: %q, want asm", got)
	}
}

// firstLines is the start of a long text (a Go panic's stack).
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}
