package release

import (
	"fmt"
	"strings"
	"testing"

	helmrelease "helm.sh/helm/v3/pkg/release"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// cartAt is a release of one workload reading one ConfigMap, at version v.
func cartAt(v string) string {
	return fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: cart}
spec:
  selector: {app: cart}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cart-config}
data: {version: %[1]q}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec:
      containers:
      - name: cart
        image: cart:%[1]s
        envFrom: [{configMapRef: {name: cart-config}}]
`, v)
}

// One workload sent back to stable after swap pins its production to the pod
// template of its last stable revision, and its configuration with it: production
// must not run 1.0's pods on 2.0's ConfigMap.
func TestPinToLastStableKeepsConfig(t *testing.T) {
	render := func(in, production string, stage string) string {
		t.Helper()
		st, err := stages.Parse(stage)
		if err != nil {
			t.Fatal(err)
		}
		res, err := renderer.Render([]byte(in), renderer.Options{Stage: st, Workloads: []string{"cart"}, ProductionManifest: []byte(production)})
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Manifest)
	}
	stable := render(cartAt("1.0"), "", "stable")
	at100 := render(cartAt("2.0"), stable, "100")
	swapped := render(cartAt("2.0"), at100, "swap")
	rel := func(version int, stage, manifest string) *helmrelease.Release {
		return &helmrelease.Release{Name: "shop", Namespace: "default", Version: version, Manifest: manifest,
			Config: map[string]any{ValuesKey: map[string]any{"stage": stage}}, Info: &helmrelease.Info{Status: helmrelease.StatusSuperseded}}
	}
	history := []*helmrelease.Release{rel(1, "stable", stable), rel(2, "100", at100), rel(3, "swap", swapped)}
	newest := func(want func(*helmrelease.Release, renderer.Config) bool) (*helmrelease.Release, error) {
		return newestRevision(history, want), nil
	}
	production, err := pinToLastStable(newest, "cart", []byte(swapped))
	if err != nil {
		t.Fatal(err)
	}
	out := render(cartAt("2.0"), string(production), "stable")
	for _, want := range []string{"image: cart:1.0", `version: "1.0"`} {
		if !strings.Contains(out, want) {
			t.Errorf("stable after swap, pinned to revision 1, lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `version: "2.0"`) {
		t.Errorf("production's ConfigMap keeps 2.0:\n%s", out)
	}
}
