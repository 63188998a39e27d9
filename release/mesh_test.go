package release

import (
	"bytes"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// TestMeshFirst: the order of a stage's two upgrades. Toward the canary the pods
// come first; away from it the routes; at swap the routes when canary pods run.
func TestMeshFirst(t *testing.T) {
	st := func(s string) stages.Stage {
		x, err := stages.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	at := func(stage string, workloads map[string]renderer.Workload) canaryState {
		return canaryState{renderer.Config{Stage: stage, Workloads: workloads}}
	}
	for _, c := range []struct {
		prev canaryState
		step stages.Step
		want bool
	}{
		{at("stable", nil), stages.Step{Stage: st("10")}, false},
		{at("10", nil), stages.Step{Stage: st("90")}, false},
		{at("90", nil), stages.Step{Stage: st("100")}, false},
		{at("stable", nil), stages.Step{Stage: st("preview")}, false},
		{at("100", nil), stages.Step{Stage: st("10")}, false},
		{at("10", nil), stages.Step{Stage: st("stable")}, true},
		{at("swap", nil), stages.Step{Stage: st("final"), Draining: true}, true},
		{at("final", nil), stages.Step{Stage: st("final")}, true},
		{at("100", nil), stages.Step{Stage: st("swap")}, true},
		// A forced swap from stable: no canary pods to move the traffic onto yet.
		{at("stable", nil), stages.Step{Stage: st("swap")}, false},
		// One workload's canary runs (seed 002's app-c at 100).
		{at("stable", map[string]renderer.Workload{"app-c": {Stage: "100"}}), stages.Step{Stage: st("swap")}, true},
	} {
		if got := meshFirst(c.prev, c.step); got != c.want {
			t.Errorf("from %s to %s (draining %v): mesh first %v, want %v", c.prev, c.step.Stage, c.step.Draining, got, c.want)
		}
	}
}

// TestMeshChartKeepsObjectsVerbatim: the companion release's chart prints the
// rendered routing objects as they are; template syntax inside them (a header
// value, a Lua string) is never evaluated.
func TestMeshChartKeepsObjectsVerbatim(t *testing.T) {
	manifest := []byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: a\nspec:\n  hosts: [a]\n  http:\n  - match:\n    - headers:\n        x: {exact: \"{{ .Values.secret }}\"}\n    route:\n    - destination: {host: a}\n")
	ch := meshChart(nil, "shop-mesh", manifest)
	if err := ch.Validate(); err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(ch, map[string]any{"secret": "leaked"}, chartutil.ReleaseOptions{Name: "shop-mesh", Namespace: "shop"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	got := out[ch.Name()+"/templates/routing.yaml"]
	if got != string(manifest) {
		t.Errorf("the companion chart renders\n%s\nwant the manifest verbatim\n%s", got, manifest)
	}
}

// TestSplitRenderer: Helm gets the workload part, the mesh part is kept.
func TestSplitRenderer(t *testing.T) {
	in := "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\n"
	s := &splitRenderer{}
	out, err := s.Run(bytes.NewBufferString(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "DestinationRule") || !strings.Contains(out.String(), "kind: Service") {
		t.Errorf("Helm gets %q", out)
	}
	if !strings.Contains(string(s.mesh), "DestinationRule") || strings.Contains(string(s.mesh), "kind: Service") {
		t.Errorf("the mesh part is %q", s.mesh)
	}
}

// TestSameStageIgnoresWhereTheMeshIs: the companion is in step when its canary
// block is the release's, whatever each says of the mesh cluster.
func TestSameStageIgnoresWhereTheMeshIs(t *testing.T) {
	a := renderer.Config{Stage: "10", MeshCluster: &renderer.MeshCluster{Release: "x-mesh"}}
	b := renderer.Config{Stage: "10"}
	if !sameStage(a, b) {
		t.Error("the same stage with and without meshCluster is not in step")
	}
	b.Stage = "90"
	if sameStage(a, b) {
		t.Error("stages 10 and 90 are in step")
	}
	c := renderer.Config{Stage: "stable", Workloads: map[string]renderer.Workload{"app-a": {Stage: "10"}}}
	d := renderer.Config{Stage: "stable", Workloads: map[string]renderer.Workload{"app-a": {Stage: "90"}}}
	if sameStage(c, d) {
		t.Error("a workload at 10 and at 90 are in step")
	}
}
