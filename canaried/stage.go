package canaried

import (
	"slices"

	"github.com/helm-canary/helm-canary/stages"
)

// Stage reads a workload's stage off the manifest, for releases whose values do not
// say it (pipeline mode keeps the stage in the pipeline's arguments): a canary at 0
// replicas is stable; all traffic on a canary that runs production's images is
// swap; otherwise the canary's weight.
func (m *Manifest) Stage(w Workload) stages.Stage {
	if n, ok := Replicas(w.Canary.Fields); ok && n == 0 {
		return stages.Stable
	}
	split := m.Weights(w)
	if split.Canary == 100 && slices.Equal(Images(w.Production.Fields), Images(w.Canary.Fields)) {
		return stages.Swap
	}
	s, err := stages.Weight(split.Canary)
	if err != nil {
		return stages.Stable
	}
	return s
}

// ReleaseStage is the stage of a manifest's first canaried workload; ok is false
// when it canaries none.
func (m *Manifest) ReleaseStage(track string) (stages.Stage, bool) {
	ws := m.Workloads(track)
	if len(ws) == 0 {
		return stages.Stage{}, false
	}
	return m.Stage(ws[0]), true
}
