package release

import (
	"strconv"
	"strings"

	"github.com/helm-canary/helm-canary/stages"
)

// inferStage reads a workload's stage off a manifest, for releases staged in
// pipeline mode (the stage is in the pipeline's arguments, not in the values):
// canary at 0 replicas is stable; all traffic on a canary whose images production
// already runs is swap; otherwise the canary's weight.
func inferStage(objs []object, w workloadObjects) stages.Stage {
	canary := deploymentFacts(w.canary)
	if canary.replicas != nil && *canary.replicas == 0 {
		return stages.Stable
	}
	split := Split{Production: 100}
	for _, vs := range objs {
		if vs.kind != "VirtualService" || !hostsInclude(vs.obj, w.service) {
			continue
		}
		if s := routeWeights(vs.obj, w.service); len(s) > 0 {
			split = s[len(s)-1]
		}
	}
	if split.Canary == 100 && strings.Join(deploymentFacts(w.production).images, ",") == strings.Join(canary.images, ",") {
		return stages.Swap
	}
	s, err := stages.Parse(strconv.Itoa(split.Canary))
	if err != nil {
		return stages.Stable
	}
	return s
}

// inferredState is the release's stage from its manifest when its values carry no
// canary block: the stage of its first canaried workload.
func inferredState(manifest, track string) (stages.State, bool) {
	objs, err := manifestObjects(manifest)
	if err != nil {
		return stages.State{}, false
	}
	ws := workloadsOf(objs, track)
	if len(ws) == 0 {
		return stages.State{}, false
	}
	return stages.State{Stage: inferStage(objs, ws[0])}, true
}
