package release

import (
	"github.com/helm-canary/helm-canary/canaried"
	"github.com/helm-canary/helm-canary/stages"
)

// inferredState is the release's stage from its manifest when its values carry no
// canary block (staged in pipeline mode, or never): the stage of its first canaried
// workload.
func inferredState(manifest, track string) (stages.State, bool) {
	m, err := canaried.Read([]byte(manifest), "")
	if err != nil {
		return stages.State{}, false
	}
	return m.ReleaseStage(track)
}
