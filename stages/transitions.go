package stages

import "fmt"

// State is where a release stands, as stored in its values' canary: block.
type State struct {
	Stage Stage
	// Draining: the canary pods run but get no traffic. Final's first step (traffic
	// is back on production, the canary pods still run), or stage 0's warm-up
	// before a stage first sends traffic to new canary pods.
	Draining bool
}

// Step is one Helm upgrade of a transition.
type Step struct {
	Stage    Stage
	Draining bool
	// WaitReady: the next step sends traffic to the canary's pods, so they must be
	// Ready before it runs (hazard 2).
	WaitReady bool
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
	if (to.IsNumeric() || to == Preview) && (!current.CanaryUp() || from.Draining) {
		// Hazard 2: no route to pods that are not there yet. The canary's pods start
		// with no traffic (not even match rules); traffic moves once they are Ready.
		// A warm-up that was interrupted (or whose pods never got Ready) is waited
		// for again: its revision says nothing about readiness.
		zero, _ := Weight(0)
		return Plan{Steps: []Step{{Stage: zero, Draining: true, WaitReady: true}, {Stage: to}}}, nil
	}
	return Plan{Steps: []Step{{Stage: to}}}, nil
}

// CanDrain reports whether a stage takes Draining: final, or the canary weight 0.
func (s Stage) CanDrain() bool { return s == Final || (s.IsNumeric() && s.weight == 0) }
