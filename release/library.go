package release

import (
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/helm-canary/helm-canary/stages"
)

// Library mode: a chart that renders the canary objects itself with
// charts/canary-lib (seed 001's pattern, and what GitOps tools that cannot run a
// post-renderer need). helm canary then drives it through values, in seed 001's
// names: productionDeployment and canaryDeployment, each with replicaCount, weight
// and image.

const libraryChart = "canary-lib"

var (
	productionKey = "productionDeployment"
	canaryKey     = "canaryDeployment"
)

// usesLibrary reports whether a chart renders its canary objects with canary-lib
// (it depends on it and canaryLib.enabled is true in the given values).
func usesLibrary(ch *chart.Chart, values map[string]any) bool {
	uses := false
	for _, dep := range ch.Metadata.Dependencies {
		if dep.Name == libraryChart {
			uses = true
		}
	}
	for _, dep := range ch.Dependencies() {
		if dep.Name() == libraryChart {
			uses = true
		}
	}
	if !uses {
		return false
	}
	merged, err := chartutil.CoalesceValues(ch, values)
	if err != nil {
		return false
	}
	enabled, _ := dig(map[string]any(merged), "canaryLib", "enabled").(bool)
	return enabled
}

// librarySide is one side's settings as the chart sees them (defaults included).
type librarySide struct {
	replicas int
	image    map[string]any
}

func librarySides(ch *chart.Chart, values map[string]any) (production, canary librarySide, err error) {
	merged, err := chartutil.CoalesceValues(ch, values)
	if err != nil {
		return production, canary, err
	}
	// Effective images: a side's empty repository or tag falls back to the chart's
	// top-level image, as canary-lib does; the canary's also to production's.
	top, _ := dig(map[string]any(merged), "image").(map[string]any)
	read := func(key string, fallback map[string]any) librarySide {
		s := librarySide{replicas: toInt(dig(map[string]any(merged), key, "replicaCount")), image: map[string]any{}}
		if img, ok := dig(map[string]any(merged), key, "image").(map[string]any); ok {
			s.image = deepCopy(img)
		}
		for _, f := range []string{"repository", "tag", "pullPolicy"} {
			// --set makes numbers of tags such as 83: only nil and "" are unset.
			if v := s.image[f]; (v == nil || v == "") && fallback[f] != nil && fallback[f] != "" {
				s.image[f] = fallback[f]
			}
		}
		return s
	}
	production = read(productionKey, top)
	canary = read(canaryKey, top)
	return production, canary, nil
}

// libraryStep sets the values one step of a transition needs: weights, replicas,
// and at swap the canary's image copied into production. pinned is production's
// image as it runs now: at the stages up to 100 a new version reaches only the
// canary, so production's image is kept whatever the command line said.
func libraryStep(vals map[string]any, ch *chart.Chart, step stages.Step, canaryReplicas *int32, pinned map[string]any) (map[string]any, error) {
	production, canary, err := librarySides(ch, vals)
	if err != nil {
		return nil, err
	}
	out := deepCopy(vals)
	side := func(key string) map[string]any {
		m, ok := out[key].(map[string]any)
		if !ok {
			m = map[string]any{}
			out[key] = m
		}
		return m
	}
	rc := production.replicas
	if canaryReplicas != nil {
		rc = int(*canaryReplicas)
	}
	canaryUp := step.Stage.CanaryUp() || (step.Draining && step.Stage == stages.Final)
	// The canary runs "version N": its own image if the values name one, else the
	// chart's top-level image (so `--set image.tag=84` means the same as without the
	// library); written out so that later stages keep it.
	if canaryUp && step.Stage != stages.Swap {
		side(canaryKey)["image"] = canary.image
	}
	switch {
	case step.Stage == stages.Swap:
		side(productionKey)["image"] = canary.image
	case step.Stage.ProductionFromRender():
		// final: production already runs the canary's version since swap.
	case pinned != nil:
		side(productionKey)["image"] = pinned
	}
	if canaryUp {
		side(canaryKey)["replicaCount"] = rc
	} else {
		side(canaryKey)["replicaCount"] = 0
	}
	side(productionKey)["weight"] = step.Stage.ProductionWeight()
	side(canaryKey)["weight"] = step.Stage.CanaryWeight()
	if step.Draining {
		side(productionKey)["weight"], side(canaryKey)["weight"] = 100, 0
	}
	return out, nil
}

// libraryPinned is production's image in a revision's values.
func libraryPinned(ch *chart.Chart, values map[string]any) map[string]any {
	production, _, err := librarySides(ch, values)
	if err != nil {
		return nil
	}
	return production.image
}
