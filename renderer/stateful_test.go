package renderer

import (
	"strings"
	"testing"
)

const cartClaim = `---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: cart-data
spec:
  accessModes: [ACCESS]
  resources: {requests: {storage: 1Gi}}
`

// cartWithClaim mounts the claim cart-data in cart's pods.
func cartWithClaim(mode string) string {
	in := strings.Replace(appAt("2.0"), "          containerPort: 8080\n",
		"          containerPort: 8080\n        volumeMounts:\n        - {name: data, mountPath: /data}\n      volumes:\n      - name: data\n        persistentVolumeClaim:\n          claimName: cart-data\n", 1)
	return strings.Replace(cartClaim, "ACCESS", mode, 1) + in
}

func cartRecreate() string {
	return strings.Replace(appAt("2.0"), "  replicas: 3\n", "  replicas: 3\n  strategy:\n    type: Recreate\n", 1)
}

func TestStatefulDeployments(t *testing.T) {
	stateful := map[string]string{
		"ReadWriteOnce claim":    cartWithClaim("ReadWriteOnce"),
		"ReadWriteOncePod claim": cartWithClaim("ReadWriteOncePod"),
		"strategy Recreate":      cartRecreate(),
	}
	for name, in := range stateful {
		t.Run(name+", by default: left alone with a warning", func(t *testing.T) {
			res, err := Render([]byte(in), Options{Stage: mustStage(t, "10")})
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Manifest) != in {
				t.Errorf("a stateful Deployment was changed:\n%s", res.Manifest)
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "Deployment cart is not canaried") || !strings.Contains(res.Warnings[0], "--force-stateful") {
				t.Errorf("warnings = %q", res.Warnings)
			}
		})
		t.Run(name+", named: refused", func(t *testing.T) {
			err := renderErr(t, in, Options{Stage: mustStage(t, "10"), Workloads: []string{"cart"}})
			for _, want := range []string{"Deployment cart is stateful", "--force-stateful", "canary.workloads.cart.forceStateful"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
		t.Run(name+", named and forced: canaried", func(t *testing.T) {
			for _, opts := range []Options{
				{Stage: mustStage(t, "10"), Workloads: []string{"cart"}, ForceStateful: true},
				{Stage: mustStage(t, "10"), Workloads: []string{"cart"}, PerWorkload: map[string]WorkloadOptions{"cart": {ForceStateful: true}}},
			} {
				res, err := Render([]byte(in), opts)
				if err != nil {
					t.Fatal(err)
				}
				find(t, string(res.Manifest), "Deployment", "cart-canary")
				if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "forced") {
					t.Errorf("warnings = %q", res.Warnings)
				}
			}
		})
	}
	for name, in := range map[string]string{
		"ReadWriteMany claim":          cartWithClaim("ReadWriteMany"),
		"ReadOnlyMany claim":           cartWithClaim("ReadOnlyMany"),
		"claim made outside the chart": strings.SplitN(cartWithClaim("ReadWriteOnce"), "---\n", 3)[2],
	} {
		t.Run(name+": canaried", func(t *testing.T) {
			res, err := Render([]byte("---\n"+strings.TrimPrefix(in, "---\n")), Options{Stage: mustStage(t, "10")})
			if err != nil {
				t.Fatal(err)
			}
			find(t, string(res.Manifest), "Deployment", "cart-canary")
		})
	}
	t.Run("config key", func(t *testing.T) {
		c, err := ParseConfig([]byte("canary:\n  workloads:\n    cart: {forceStateful: true}\n"))
		if err != nil {
			t.Fatal(err)
		}
		var o Options
		if err := c.Apply(&o); err != nil {
			t.Fatal(err)
		}
		if !o.forceStateful("cart") || o.forceStateful("other") {
			t.Errorf("forceStateful from config = %v / %v", o.forceStateful("cart"), o.forceStateful("other"))
		}
	})
}

// A chart version that changes a Deployment's selector fails at apply time with
// "field is immutable"; with the production manifest at hand, say so up front.
func TestSelectorChange(t *testing.T) {
	production := productionManifest(t)
	changed := strings.ReplaceAll(appAt("2.0"), "app: cart", "app.kubernetes.io/name: cart")
	for _, opts := range []Options{
		{Stage: mustStage(t, "10"), ProductionManifest: []byte(production)},
		{Stage: mustStage(t, "stable"), ProductionManifest: []byte(production), Workloads: []string{"cart"}},
	} {
		err := renderErr(t, changed, opts)
		for _, want := range []string{"Deployment cart", "{matchLabels: {app: cart}}", "{matchLabels: {app.kubernetes.io/name: cart}}", "immutable", "--cascade=orphan"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	}
	// The same selector in another layout is no change.
	flow := strings.Replace(appAt("2.0"), "  selector:\n    matchLabels:\n      app: cart\n", "  selector: {matchLabels: {app: \"cart\"}}\n", 1)
	render(t, flow, Options{Stage: mustStage(t, "10"), ProductionManifest: []byte(production)})
}

// The chart's own subset settings (TLS mode, connection pool) hold for the pods they
// covered: production's subset keeps those of the subset that selected production's
// pods, the canary's those of the one that selects the canary's.
func TestSubsetTrafficPolicyCarriedOver(t *testing.T) {
	dr := `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: cart-api
spec:
  host: cart-api
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
      connectionPool: {tcp: {maxConnections: 100}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      tls: {mode: DISABLE}
`
	at := func(v string) string {
		return strings.Replace(appAt(v), "      labels:\n        app: cart\n", "      labels:\n        app: cart\n        version: v"+v+"\n", 1) + dr
	}
	production := render(t, at("1"), Options{Stage: mustStage(t, "stable")})
	res, err := Render([]byte(at("2")), Options{Stage: mustStage(t, "10"), ProductionManifest: []byte(production)})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Manifest)
	d := find(t, out, "DestinationRule", "cart-api")
	wantField(t, d, "spec.subsets[2].name", "production")
	wantField(t, d, "spec.subsets[2].trafficPolicy", "connectionPool:\n  tcp:\n    maxConnections: 100\ntls:\n  mode: ISTIO_MUTUAL")
	wantField(t, d, "spec.subsets[3].name", "canary")
	wantField(t, d, "spec.subsets[3].trafficPolicy", "tls:\n  mode: DISABLE")
	wantField(t, d, "spec.trafficPolicy.loadBalancer.simple", "LEAST_REQUEST")

	// Pods no subset covered get no subset policy; the host-wide one still applies.
	plain := render(t, appAt("2.0")+dr, Options{Stage: mustStage(t, "10")})
	wantField(t, find(t, plain, "DestinationRule", "cart-api"), "spec.subsets[3].trafficPolicy", "<none>")
}
