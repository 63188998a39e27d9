package release

import (
	"fmt"
	"strings"

	helmrelease "helm.sh/helm/v3/pkg/release"
	"sigs.k8s.io/yaml"

	"github.com/helm-canary/helm-canary/canaried"
	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// targets is the canary block's workloads once names are added: those the release
// canaries now (for a release that canaried every Deployment by default, read off its
// manifest, so that naming some never drops the others), the settings given now, and
// the named ones.
func targetsOf(stored, config canaryState, current *helmrelease.Release, names []string) map[string]renderer.Workload {
	out := map[string]renderer.Workload{} // never nil: the stage loop writes into it
	if len(stored.Workloads) == 0 {
		if m, err := canaried.Read([]byte(current.Manifest), current.Namespace); err == nil {
			for _, w := range m.Workloads(trackLabel(config.Config)) {
				out[w.Name] = renderer.Workload{}
			}
		}
	}
	for k, v := range config.Workloads {
		out[k] = v
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			out[n] = renderer.Workload{}
		}
	}
	return out
}

// workloadState is where one workload stands: its own stage, or the release's.
func workloadState(config renderer.Config, name string) (stages.State, error) {
	w := config.Workloads[name]
	if w.Stage == "" {
		return stateOf(config)
	}
	s, err := stages.Parse(w.Stage)
	if err != nil {
		return stages.State{}, fmt.Errorf("the release's values say %s.workloads.%s.stage %q: %w", ValuesKey, name, w.Stage, err)
	}
	return stages.State{Stage: s, Draining: w.Draining}, nil
}

// pinToLastStable appends to a production manifest the Deployment of the newest
// revision where this workload was at stable or final (newest finds it, as
// revisions.newest does), and the ConfigMaps and Secrets its pods read there; the
// renderer reads the last object of a name, so those pin production,
// configuration included.
func pinToLastStable(newest func(func(*helmrelease.Release, renderer.Config) bool) (*helmrelease.Release, error), workload string, production []byte) ([]byte, error) {
	rel, err := newest(func(_ *helmrelease.Release, cfg renderer.Config) bool {
		st, err := workloadState(cfg, workload)
		return err == nil && !st.Draining && (st.Stage == stages.Stable || st.Stage == stages.Final)
	})
	if err != nil {
		return nil, err
	}
	if rel == nil {
		return production, nil // never stable: production stays as it runs
	}
	m, err := canaried.Read([]byte(rel.Manifest), rel.Namespace)
	if err != nil {
		return nil, err
	}
	d := m.Get("Deployment", workload)
	if d == nil {
		return production, nil
	}
	doc, err := yaml.Marshal(d.Fields)
	if err != nil {
		return nil, err
	}
	out := append(append(append([]byte{}, production...), "\n---\n"...), doc...)
	configs, err := renderer.ConfigsReadBy(doc)
	if err != nil {
		return nil, err
	}
	for _, c := range configs {
		kind, name, _ := strings.Cut(c, "/")
		o := m.Get(kind, name)
		if o == nil {
			continue
		}
		cdoc, err := yaml.Marshal(o.Fields)
		if err != nil {
			return nil, err
		}
		out = append(append(out, "\n---\n"...), cdoc...)
	}
	return out, nil
}
