package canaried

import (
	"slices"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// Stage reads a workload's stage off the manifest, for releases whose values do not
// say it (pipeline mode keeps the stage in the pipeline's arguments). The renderer
// records it on the canary Deployment (renderer.AnnotationStage, and
// renderer.AnnotationDraining for final's first step and a
// starting canary's warm-up), and that is read exactly.
// A manifest rendered before those annotations existed only shows replicas and
// weights, from which the stage is inferred: a canary at 0 replicas is stable; all
// traffic on a canary that runs production's images is swap; otherwise the
// canary's weight. That inference cannot tell final from stable, final's first
// step from 0, or 100 from swap once production runs the canary's images.
func (m *Manifest) Stage(w Workload) stages.State {
	annotations, _ := Dig(w.Canary.Fields, "metadata", "annotations").(map[string]any)
	if v, ok := annotations[renderer.AnnotationStage].(string); ok {
		if s, err := stages.Parse(v); err == nil {
			draining, _ := annotations[renderer.AnnotationDraining].(string)
			return stages.State{Stage: s, Draining: draining == "true" && s.CanDrain()}
		}
	}
	if n, ok := Replicas(w.Canary.Fields); ok && n == 0 {
		return stages.State{Stage: stages.Stable}
	}
	split := m.Weights(w)
	if split.Canary == 100 && slices.Equal(Images(w.Production.Fields), Images(w.Canary.Fields)) {
		return stages.State{Stage: stages.Swap}
	}
	s, err := stages.Weight(split.Canary)
	if err != nil {
		return stages.State{Stage: stages.Stable}
	}
	return stages.State{Stage: s}
}

// ReleaseStage is the stage of a manifest's first canaried workload; ok is false
// when it canaries none.
func (m *Manifest) ReleaseStage(track string) (stages.State, bool) {
	ws := m.Workloads(track)
	if len(ws) == 0 {
		return stages.State{}, false
	}
	return m.Stage(ws[0]), true
}
