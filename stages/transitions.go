package stages

import "fmt"

// State is where a release stands, as stored in its values' canary: block.
type State struct {
	Stage Stage
	// Draining marks final's first step: traffic is back on production, the canary
	// pods still run.
	Draining bool
}

// Step is one Helm upgrade of a transition.
type Step struct {
	Stage    Stage
	Draining bool
}

// Plan is how to move a release from one stage to another.
type Plan struct {
	Steps []Step
	// Restore means the chart and values of the release's last stable (or final)
	// revision are rendered again: stable is the rollback.
	Restore bool
	// Promote means the canary's version becomes production's: the chart and values
	// must stay what the canary was tested with.
	Promote bool
}

// PlanTransition checks a move and spells it out. Unsafe moves (swap before the
// canary took all traffic, final before swap) are refused unless force.
func PlanTransition(from State, to Stage, force bool) (Plan, error) {
	if to.IsZero() {
		return Plan{}, fmt.Errorf("no stage given")
	}
	current := from.Stage
	if current.IsZero() {
		current = Stable
	}
	switch to {
	case Stable:
		return Plan{Steps: []Step{{Stage: Stable}}, Restore: true}, nil
	case Swap:
		if current != Swap && !(current.IsNumeric() && current.CanaryWeight() == 100) && !force {
			return Plan{}, fmt.Errorf("stage swap rolls production to the canary's version and needs the canary to carry all traffic first, but the release is at stage %s: run stage 100 first (or pass --force)", current)
		}
		return Plan{Steps: []Step{{Stage: Swap}}, Promote: true}, nil
	case Final:
		if current == Final && !from.Draining {
			return Plan{Steps: []Step{{Stage: Final}}, Promote: true}, nil
		}
		if current != Swap && current != Final && !force {
			return Plan{}, fmt.Errorf("stage final makes the canary's version the new stable one and needs stage swap first, but the release is at stage %s: run stage swap first (or pass --force)", current)
		}
		// Hazard 3: traffic leaves the canary in one upgrade, its pods go in the next.
		return Plan{Steps: []Step{{Stage: Final, Draining: true}, {Stage: Final}}, Promote: true}, nil
	}
	return Plan{Steps: []Step{{Stage: to}}}, nil
}
