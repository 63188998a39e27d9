package release

import (
	"bytes"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	helmrelease "helm.sh/helm/v3/pkg/release"
	helmtime "helm.sh/helm/v3/pkg/time"

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

// TestRoutesOfARestoredRevision: the companion revision a rollback re-applies with
// a workload revision: the one helm-canary paired with it, else (a pipeline's two
// releases) the newest one deployed before the workload revision that followed.
func TestRoutesOfARestoredRevision(t *testing.T) {
	at := func(version, minute int, status helmrelease.Status, config map[string]any) *helmrelease.Release {
		return &helmrelease.Release{Version: version, Config: config, Info: &helmrelease.Info{Status: status,
			LastDeployed: helmtime.Unix(int64(minute*60), 0)}}
	}
	staged := func(stage string, workload int) map[string]any {
		return map[string]any{ValuesKey: map[string]any{"stage": stage}, "workload": map[string]any{"release": "web", "revision": workload}}
	}
	pipeline := map[string]any{"image": map[string]any{"tag": "83"}}
	super, failed := helmrelease.StatusSuperseded, helmrelease.StatusFailed
	for _, c := range []struct {
		name       string
		companion  []*helmrelease.Release
		base, next *helmrelease.Release
		want       int
	}{
		{"paired by helm-canary", []*helmrelease.Release{at(1, 1, super, staged("stable", 1)), at(2, 3, super, staged("10", 2)), at(3, 5, super, staged("stable", 3)), at(4, 7, super, staged("10", 4))},
			at(3, 5, super, nil), at(4, 6, super, nil), 3},
		{"paired, a repair after a failure", []*helmrelease.Release{at(1, 1, super, staged("stable", 1)), at(2, 3, super, staged("stable", 1)), at(3, 5, super, staged("10", 2))},
			at(1, 1, super, nil), at(2, 4, super, nil), 2},
		{"a failed companion revision is not restored", []*helmrelease.Release{at(1, 1, super, staged("stable", 1)), at(2, 3, failed, staged("stable", 1))},
			at(1, 1, super, nil), at(2, 4, super, nil), 1},
		// Toward the canary a pipeline upgrades the workloads first: the mesh's 10
		// comes after the workloads' 10.
		{"pipeline install, then helm-canary", []*helmrelease.Release{at(1, 2, super, pipeline), at(2, 4, super, staged("10", 2))},
			at(1, 1, super, nil), at(2, 3, super, nil), 1},
		{"pipeline, stable after 10 (the mesh first)", []*helmrelease.Release{at(1, 2, super, pipeline), at(2, 4, super, pipeline), at(3, 5, super, pipeline), at(4, 8, super, pipeline)},
			at(3, 6, super, nil), at(4, 7, super, nil), 3},
		{"no revision of the companion went with it", []*helmrelease.Release{at(1, 4, super, staged("10", 2))},
			at(1, 1, super, nil), at(2, 3, super, nil), 0},
		{"base is the newest", []*helmrelease.Release{at(1, 2, super, pipeline), at(2, 4, super, pipeline)},
			at(1, 1, super, nil), nil, 2},
	} {
		got := 0 // none
		if rel := routesOf(c.companion, c.base, c.next); rel != nil {
			got = rel.Version
		}
		if got != c.want {
			t.Errorf("%s: revision %d, want %d (0: none)", c.name, got, c.want)
		}
	}
}
