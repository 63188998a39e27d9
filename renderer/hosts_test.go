package renderer

import (
	"strings"
	"testing"
)

// A chart's gateway VirtualService that routes /cart to this release's cart-api and
// /other to another team's Service of the same name, by its FQDN.
const otherTeamRoute = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop-ingress
spec:
  hosts: ["shop.example.com"]
  gateways: [shop-gateway]
  http:
  - match: [{uri: {prefix: /cart}}]
    route:
    - destination: {host: cart-api}
  - match: [{uri: {prefix: /other}}]
    route:
    - destination: {host: cart-api.other-team.svc.cluster.local}
`

// The other namespace's cart-api has no production or canary subsets: its route is
// left as the chart wrote it, whether the release's namespace is known or not, and
// it is split only when that namespace is the release's.
func TestOtherNamespaceHostLeftAlone(t *testing.T) {
	for _, tt := range []struct {
		namespace string
		split     bool   // the FQDN route is this release's
		warning   string // "" for none about the host
	}{
		{"shop", false, ""},
		{"", false, "host cart-api.other-team.svc.cluster.local names Service cart-api in namespace other-team, and render does not know the release's namespace, so it is left as it is"},
		{"other-team", true, ""},
	} {
		res, err := Render([]byte(appAt("2.0")+otherTeamRoute), Options{Stage: mustStage(t, "10"), Namespace: tt.namespace})
		if err != nil {
			t.Fatal(err)
		}
		out := string(res.Manifest)
		vs := find(t, out, "VirtualService", "shop-ingress")
		if w := weights(t, vs, 0); w["production"] != "90" || w["canary"] != "10" {
			t.Errorf("namespace %q: the short host's route weights = %v", tt.namespace, w)
		}
		w := weights(t, vs, 1)
		if tt.split && (w["production"] != "90" || w["canary"] != "10") {
			t.Errorf("namespace %q: the release's own FQDN route weights = %v, want 90/10", tt.namespace, w)
		}
		if !tt.split {
			wantField(t, vs, "spec.http[1].route[0].destination.host", "cart-api.other-team.svc.cluster.local")
			if len(w) != 1 || w["<host>"] != "" {
				t.Errorf("namespace %q: the other namespace's route was rewritten: %v", tt.namespace, w)
			}
		}
		got := strings.Join(res.Warnings, "\n")
		if tt.warning != "" && !strings.Contains(got, tt.warning) {
			t.Errorf("namespace %q: warnings lack %q:\n%s", tt.namespace, tt.warning, got)
		}
		if tt.warning == "" && strings.Contains(got, "cart-api.other-team") {
			t.Errorf("namespace %q: unexpected warning about the host:\n%s", tt.namespace, got)
		}
		// The DestinationRule helm-canary creates is for this release's host only.
		wantField(t, find(t, out, "DestinationRule", "cart-api"), "spec.host", "cart-api")
	}
}

// A chart's own VirtualService for its Service's FQDN in a cluster whose domain is
// not cluster.local: with the domain set, its route is split in place and no second
// VirtualService is made for the host (hazard 5).
func TestCustomClusterDomain(t *testing.T) {
	own := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: cart-api
spec:
  hosts: [cart-api.shop.svc.corp.example]
  http:
  - route:
    - destination: {host: cart-api.shop.svc.corp.example}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: cart-api
spec:
  host: cart-api.shop.svc.corp.example
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`
	opts := Options{Stage: mustStage(t, "10"), Namespace: "shop", ClusterDomain: "corp.example"}
	out := render(t, appAt("2.0")+own, opts)
	if c := count(t, out, "VirtualService"); c != 1 {
		t.Errorf("%d VirtualServices, want the chart's only:\n%s", c, out)
	}
	if c := count(t, out, "DestinationRule"); c != 1 {
		t.Errorf("%d DestinationRules, want the chart's only:\n%s", c, out)
	}
	vs := find(t, out, "VirtualService", "cart-api")
	if w := weights(t, vs, 0); w["production"] != "90" || w["canary"] != "10" {
		t.Errorf("route weights = %v", w)
	}
	wantField(t, vs, "spec.http[0].route[1].destination.host", "cart-api.shop.svc.corp.example")
	dr := find(t, out, "DestinationRule", "cart-api")
	wantField(t, dr, "spec.subsets[1].name", "canary")
	// Recorded on the canary for the readers of a pipeline's release, which keeps
	// the setting nowhere else; gone again when a render has the default domain.
	canary := find(t, out, "Deployment", "cart-canary")
	wantField(t, canary, "metadata.annotations.helm-canary\\.io/cluster-domain", "corp.example")
	again := render(t, out, Options{Stage: mustStage(t, "10"), Namespace: "shop"})
	if strings.Contains(again, AnnotationClusterDomain) {
		t.Errorf("re-rendered with the default domain, the canary still records one:\n%s", again)
	}

	// The same chart with the default domain: its objects name some other host,
	// and the warning names the setting.
	res, err := Render([]byte(appAt("2.0")+own), Options{Stage: mustStage(t, "10"), Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if c := count(t, string(res.Manifest), "VirtualService"); c != 2 {
		t.Errorf("default domain: %d VirtualServices, want the chart's untouched and helm-canary's", c)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "host cart-api.shop.svc.corp.example would name Service cart-api in a cluster whose DNS domain is corp.example, not cluster.local") ||
		!strings.Contains(res.Warnings[0], "pass --cluster-domain corp.example") {
		t.Errorf("default domain: warnings %q", res.Warnings)
	}

	// The setting comes from the canary: block as well, and is checked.
	c, err := ParseConfig([]byte("canary:\n  clusterDomain: corp.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	var o Options
	if err := c.Apply(&o); err != nil || o.ClusterDomain != "corp.example" {
		t.Errorf("clusterDomain from config: %q, %v", o.ClusterDomain, err)
	}
	for _, bad := range []string{"Corp.Example", ".cluster.local", "cluster.local.", "cluster..local", "-a.b", "a b"} {
		err := renderErr(t, appAt("2.0"), Options{ClusterDomain: bad})
		if !strings.Contains(err.Error(), "cluster domain") {
			t.Errorf("cluster domain %q: %v", bad, err)
		}
	}
}

// With the release's namespace unknown, a chart's DestinationRule or VirtualService
// for a host naming the Service in some namespace is refused: split in place if it
// is this release's, left alone if another namespace's, and only the namespace
// tells which. Making one for the short name beside it would double the host.
func TestObjectsForANamespacedHostNeedTheNamespace(t *testing.T) {
	for _, obj := range []string{`---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart-fqdn}
spec:
  hosts: [cart-api.shop.svc.cluster.local]
  http:
  - route:
    - destination: {host: cart-api.shop.svc.cluster.local}
`, `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart-fqdn}
spec:
  host: cart-api.shop.svc
`} {
		for _, stage := range []string{"stable", "10"} {
			err := renderErr(t, appAt("2.0")+obj, Options{Stage: mustStage(t, stage)})
			for _, want := range []string{"cart-fqdn is for host cart-api.shop.svc", "Service cart-api in namespace shop", "pass the release's namespace with --namespace"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("stage %s: error %q lacks %q", stage, err, want)
				}
			}
			// Told the namespace, it is the release's object, split in place.
			out := render(t, appAt("2.0")+obj, Options{Stage: mustStage(t, stage), Namespace: "shop"})
			if n := count(t, out, "VirtualService") + count(t, out, "DestinationRule"); n != 2 {
				t.Errorf("stage %s with --namespace: %d routing objects, want the chart's and one helm-canary makes of the other kind", stage, n)
			}
			// Another namespace's host is not this release's: helm-canary routes
			// its own, and the chart's object stays as it is.
			other := strings.ReplaceAll(obj, ".shop.", ".other-team.")
			out = render(t, appAt("2.0")+other, Options{Stage: mustStage(t, stage), Namespace: "shop"})
			if n := count(t, out, "VirtualService") + count(t, out, "DestinationRule"); n != 3 {
				t.Errorf("stage %s, other namespace: %d routing objects, want the chart's and helm-canary's two", stage, n)
			}
		}
	}
}
