package renderer

import (
	"strings"
	"testing"
)

const cartHPA = `---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: cart
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: cart
  minReplicas: 2
  maxReplicas: 5
`

// A rendered stream rendered again at another stage is the stream rendered at that
// stage: one canary, the new weights, the canary keeps the version it runs, and
// what the new stage does not need (the autoscaler's twin at stable) is gone.
func TestRerenderAtAnotherStage(t *testing.T) {
	production := productionManifest(t)
	at10 := render(t, appAt("2.0")+cartHPA, Options{Stage: mustStage(t, "10"), ProductionManifest: []byte(production)})

	at90 := render(t, at10, Options{Stage: mustStage(t, "90")})
	if n := count(t, at90, "Deployment"); n != 2 {
		t.Fatalf("%d Deployments, want production and one canary:\n%s", n, at90)
	}
	if got := weights(t, find(t, at90, "VirtualService", "cart-api"), 0); got["production"] != "10" || got["canary"] != "90" || len(got) != 2 {
		t.Errorf("weights = %v, want production 10, canary 90", got)
	}
	wantField(t, find(t, at90, "Deployment", "cart"), "spec.template.spec.containers[0].image", "repo/cart:1.0")
	wantField(t, find(t, at90, "Deployment", "cart-canary"), "spec.template.spec.containers[0].image", "repo/cart:2.0")
	if n := count(t, at90, "HorizontalPodAutoscaler"); n != 2 {
		t.Errorf("%d autoscalers at 90, want cart and its twin", n)
	}

	// swap: production takes the canary's version.
	swapped := render(t, at90, Options{Stage: mustStage(t, "swap")})
	wantField(t, find(t, swapped, "Deployment", "cart"), "spec.template.spec.containers[0].image", "repo/cart:2.0")
	wantField(t, find(t, swapped, "Deployment", "cart"), "spec.template.metadata.labels.helm-canary\\.io/track", "production")

	stable := render(t, at90, Options{Stage: mustStage(t, "stable")})
	if n := count(t, stable, "HorizontalPodAutoscaler"); n != 1 {
		t.Errorf("%d autoscalers at stable, want cart's alone (no twin without canary pods):\n%s", n, stable)
	}
	if n := count(t, stable, "Deployment"); n != 2 {
		t.Errorf("%d Deployments at stable, want 2", n)
	}
	wantField(t, find(t, stable, "Deployment", "cart-canary"), "spec.replicas", "0")
}

// Routing extras an earlier render added (sticky, match routes, the mirror) are made
// anew for the stage, never doubled, and dropped at stable.
func TestRerenderRoutingExtras(t *testing.T) {
	opts := Options{Stage: mustStage(t, "10"), PerWorkload: map[string]WorkloadOptions{
		"cart": {Sticky: &Sticky{Cookie: "c"}, Mirror: &Mirror{Percent: 5}}}}
	at10 := render(t, appAt("2.0"), opts)
	if got := render(t, at10, opts); got != at10 {
		t.Fatalf("not idempotent:\n%s", lineDiffString(at10, got))
	}
	stable := render(t, at10, Options{Stage: mustStage(t, "stable")})
	vs := find(t, stable, "VirtualService", "cart-api")
	if strings.Contains(vs.MustString(), "sticky") || strings.Contains(vs.MustString(), "mirror") {
		t.Errorf("stable keeps the extras of stage 10:\n%s", vs.MustString())
	}
	// Without a production manifest nothing says production's pods carry the track
	// label: the bare host, as a first render at stable routes.
	if got := weights(t, vs, 0); len(got) != 1 || got["<host>"] != "" {
		t.Errorf("routes at stable = %v, want the bare host", got)
	}
}

func TestCollisions(t *testing.T) {
	t.Run("track label the pods use", func(t *testing.T) {
		for _, key := range []string{"app", "version"} {
			in := strings.ReplaceAll(appAt("2.0"), "        app: cart\n", "        app: cart\n        version: v2\n")
			err := renderErr(t, in, Options{Stage: mustStage(t, "10"), TrackLabel: key})
			for _, want := range []string{"Deployment cart", `"` + key + `"`, "--track-label"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("--track-label %s: error %q lacks %q", key, err, want)
				}
			}
		}
	})
	t.Run("the chart ships name-canary", func(t *testing.T) {
		theirs := strings.ReplaceAll(strings.SplitN(appAt("2.0"), "---\n", 3)[2], "name: cart\n", "name: cart-canary\n")
		theirs = strings.Replace(theirs, "      app: cart\n  template", "      app: cart\n      role: canary\n  template", 1)
		theirs = strings.Replace(theirs, "        app: cart\n    spec", "        app: cart\n        role: canary\n    spec", 1)
		in := appAt("2.0") + "---\n" + theirs
		err := renderErr(t, in, Options{Stage: mustStage(t, "10"), Workloads: []string{"cart"}})
		for _, want := range []string{"Deployment cart-canary", "rename"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})
	t.Run("naming the previous canary", func(t *testing.T) {
		at10 := render(t, appAt("2.0"), Options{Stage: mustStage(t, "10")})
		err := renderErr(t, at10, Options{Stage: mustStage(t, "10"), Workloads: []string{"cart-canary"}})
		if !strings.Contains(err.Error(), "name cart in --workload") {
			t.Errorf("error %q does not point at cart", err)
		}
	})
}

// The gateway filter an earlier render made for user percentages goes when the
// stream is rendered at a stage that has none (stable), on stock Istio and on ASM.
func TestRerenderDropsStaleGatewayFilters(t *testing.T) {
	for _, mesh := range []string{"", "asm"} {
		per := map[string]WorkloadOptions{"cart": {UserPercent: &UserPercent{Header: "x-user"}}}
		at10 := render(t, appAt("2.0"), Options{Stage: mustStage(t, "10"), Mesh: mesh, PerWorkload: per})
		if !strings.Contains(at10, "kind: EnvoyFilter") && !strings.Contains(at10, "kind: WasmPlugin") {
			t.Fatalf("mesh %q: no gateway filter at 10:\n%s", mesh, at10)
		}
		stable := render(t, at10, Options{Stage: mustStage(t, "stable"), Mesh: mesh, PerWorkload: per})
		for _, kind := range []string{"EnvoyFilter", "WasmPlugin", "ASMHeaderPropagation"} {
			if n := count(t, stable, kind); n != 0 {
				t.Errorf("mesh %q: %d %s left at stable:\n%s", mesh, n, kind, stable)
			}
		}
		if got := render(t, stable, Options{Stage: mustStage(t, "stable"), Mesh: mesh, PerWorkload: per}); got != stable {
			t.Errorf("mesh %q: not idempotent at stable", mesh)
		}
	}
}
