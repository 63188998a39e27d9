package release

import (
	"fmt"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/postrender"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// mode is how a release renders its canary objects: through helm-canary's
// post-renderer (any chart), or through the chart's own canary-lib templates driven
// by values (library mode). The plan and the apply loop know nothing else of the
// difference.
type mode interface {
	// values are the complete values of one step's upgrade, given the release's
	// values with the canary block already set.
	values(vals map[string]any, step stages.Step) (map[string]any, error)
	// postRenderer is what Helm post-renders one step with (nil: none). production
	// is the manifest that pins production's pod templates.
	postRenderer(state canaryState, production []byte, c *Client) (postrender.PostRenderer, error)
	// String names the mode in plans and errors.
	String() string
}

// postRenderMode canaries the chart's output in Helm's post-render step.
type postRenderMode struct{}

func (postRenderMode) String() string { return "post-renderer" }

func (postRenderMode) values(vals map[string]any, _ stages.Step) (map[string]any, error) {
	return vals, nil
}

func (postRenderMode) postRenderer(state canaryState, production []byte, c *Client) (postrender.PostRenderer, error) {
	ropts, err := options(state.Config, production)
	if err != nil {
		return nil, err
	}
	// The release's namespace names the objects in the shared gateway namespace.
	ropts.Namespace = c.Namespace
	return &postRenderer{opts: ropts, log: c.Log}, nil
}

// libraryChartMode sets the stage through seed 001's values; the chart renders the
// objects.
type libraryChartMode struct {
	chart          *chart.Chart
	canaryReplicas *int32
	// pinned is production's image as it runs now (nil: not pinned).
	pinned map[string]any
}

func (libraryChartMode) String() string { return "library (" + libraryChart + ")" }

func (m libraryChartMode) values(vals map[string]any, step stages.Step) (map[string]any, error) {
	return libraryStep(vals, m.chart, step, m.canaryReplicas, m.pinned)
}

func (libraryChartMode) postRenderer(canaryState, []byte, *Client) (postrender.PostRenderer, error) {
	return nil, nil
}

// modeFor picks the mode a chart with these values renders in.
func modeFor(ch *chart.Chart, vals map[string]any, canaryReplicas *int32, pinned map[string]any) mode {
	if usesLibrary(ch, vals) {
		return libraryChartMode{chart: ch, canaryReplicas: canaryReplicas, pinned: pinned}
	}
	return postRenderMode{}
}

// canaryState is the stage state of a release: its values' canary: block. Every
// read and write of the stage, release-wide or per workload, goes through it.
type canaryState struct {
	renderer.Config
}

// readState reads the canary: block of a release's user values. A release that
// has none (installed without helm-canary) is at stable.
func readState(values map[string]any) (canaryState, error) {
	c, err := canaryConfig(values)
	return canaryState{c}, err
}

// release is where the whole release stands.
func (s canaryState) release() (stages.State, error) { return stateOf(s.Config) }

// workload is where one workload stands: its own stage, or the release's.
func (s canaryState) workload(name string) (stages.State, error) {
	return workloadState(s.Config, name)
}

// setRelease moves the whole release to a step and clears per-workload stages.
func (s *canaryState) setRelease(step stages.Step) {
	s.Stage, s.Draining = step.Stage.String(), step.Draining
	for name, w := range s.Workloads {
		w.Stage, w.Draining = "", false
		s.Workloads[name] = w
	}
}

// setWorkload moves one workload to a step; the release stays where it is
// (stable if it never moved).
func (s *canaryState) setWorkload(name string, step stages.Step) {
	w := s.Workloads[name]
	w.Stage, w.Draining = step.Stage.String(), step.Draining
	s.Workloads[name] = w
	if s.Stage == "" {
		s.Stage = stages.Stable.String()
	}
}

// into returns a copy of values carrying this state as the canary: block.
func (s canaryState) into(values map[string]any) (map[string]any, error) {
	return withCanary(values, s.Config)
}

func (s canaryState) String() string {
	st, err := s.release()
	if err != nil {
		return fmt.Sprintf("%q", s.Stage)
	}
	return st.Stage.String() + drainingNote(st.Stage, st.Draining)
}
