package release

import (
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/helm-canary/helm-canary/stages"
)

func libraryTestChart() *chart.Chart {
	lib := &chart.Chart{Metadata: &chart.Metadata{Name: "canary-lib", Type: "library", APIVersion: "v2", Version: "0.1.0"}}
	ch := &chart.Chart{
		Metadata: &chart.Metadata{Name: "productpage", APIVersion: "v2", Version: "0.1.0",
			Dependencies: []*chart.Dependency{{Name: "canary-lib", Version: "0.1.0"}}},
		Values: map[string]any{
			"canaryLib":            map[string]any{"enabled": false},
			"productionDeployment": map[string]any{"replicaCount": 2, "weight": 100, "image": map[string]any{"repository": "pp", "tag": "83"}},
			"canaryDeployment":     map[string]any{"replicaCount": 0, "weight": 0, "image": map[string]any{"repository": "pp", "tag": "83"}},
		},
	}
	ch.SetDependencies(lib)
	return ch
}

func TestLibraryMode(t *testing.T) {
	ch := libraryTestChart()
	if usesLibrary(ch, map[string]any{}) {
		t.Error("library mode while canaryLib.enabled is false")
	}
	on := map[string]any{"canaryLib": map[string]any{"enabled": true}}
	if !usesLibrary(ch, on) {
		t.Error("library mode not detected")
	}
	plain := &chart.Chart{Metadata: &chart.Metadata{Name: "x", APIVersion: "v2", Version: "1"}}
	if usesLibrary(plain, on) {
		t.Error("library mode for a chart without canary-lib")
	}
}

func TestLibraryStep(t *testing.T) {
	ch := libraryTestChart()
	w := func(n int) stages.Stage { s, _ := stages.Weight(n); return s }
	user := map[string]any{"canaryLib": map[string]any{"enabled": true},
		"canaryDeployment": map[string]any{"image": map[string]any{"tag": "84"}}}
	pinned := map[string]any{"repository": "pp", "tag": 83} // --set makes numbers
	tests := []struct {
		name                       string
		step                       stages.Step
		pinned                     map[string]any
		prodTag                    any
		canaryReplicas, prodWeight int
		canaryWeight               int
	}{
		{"10", stages.Step{Stage: w(10)}, pinned, 83, 2, 90, 10},
		{"100", stages.Step{Stage: w(100)}, pinned, 83, 2, 0, 100},
		{"swap copies the canary image", stages.Step{Stage: stages.Swap}, pinned, "84", 2, 0, 100},
		{"final draining", stages.Step{Stage: stages.Final, Draining: true}, nil, nil, 2, 100, 0},
		{"final", stages.Step{Stage: stages.Final}, nil, nil, 0, 100, 0},
		{"stable", stages.Step{Stage: stages.Stable}, nil, nil, 0, 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := libraryStep(user, ch, tt.step, nil, tt.pinned)
			if err != nil {
				t.Fatal(err)
			}
			if got := dig(out, "productionDeployment", "image", "tag"); tt.prodTag != nil && got != tt.prodTag {
				t.Errorf("production tag = %v, want %v", got, tt.prodTag)
			}
			if got := dig(out, "canaryDeployment", "replicaCount"); got != tt.canaryReplicas {
				t.Errorf("canary replicas = %v, want %d", got, tt.canaryReplicas)
			}
			if p, c := dig(out, "productionDeployment", "weight"), dig(out, "canaryDeployment", "weight"); p != tt.prodWeight || c != tt.canaryWeight {
				t.Errorf("weights = %v/%v, want %d/%d", p, c, tt.prodWeight, tt.canaryWeight)
			}
		})
	}
	if dig(user, "canaryDeployment", "replicaCount") != nil {
		t.Error("libraryStep changed its input")
	}
}

// A tag given as a number (--set image.tag=83) is a tag, not an unset field.
func TestLibraryNumericTags(t *testing.T) {
	ch := libraryTestChart()
	vals := map[string]any{"canaryLib": map[string]any{"enabled": true}, "image": map[string]any{"tag": 84},
		"productionDeployment": map[string]any{"image": map[string]any{"repository": "pp", "tag": 83}}}
	production, canary, err := librarySides(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	if production.image["tag"] != 83 {
		t.Errorf("production tag %v, want 83", production.image["tag"])
	}
	_ = canary
}
