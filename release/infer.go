package release

import (
	"github.com/helm-canary/helm-canary/canaried"
	"github.com/helm-canary/helm-canary/stages"
)

// inferredState is the release's stage from its manifest when its values carry no
// canary block (staged in pipeline mode, or never): the stage of its first canaried
// workload. namespace is the release's: the hosts of an old manifest without the
// stage annotation are read as the renderer matched them.
func inferredState(manifest, namespace, track string) (stages.State, bool) {
	m, err := canaried.Read([]byte(manifest), namespace)
	if err != nil {
		return stages.State{}, false
	}
	return m.ReleaseStage(track)
}
