package stages

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Stage is one row of the stage table. The zero value is not a valid stage; use Parse
// or one of the named stages.
type Stage struct {
	name   string
	weight int // canary share of traffic, 0..100
}

// The named stages. Numeric stages are made by Parse or Weight.
var (
	Stable = Stage{name: "stable", weight: 0}
	Swap   = Stage{name: "swap", weight: 100}
	Final  = Stage{name: "final", weight: 0}
	// Preview is blue-green's preview: canary pods up, no weighted traffic, only
	// requests matching the workload's match rules reach them (the same as 0).
	Preview = Stage{name: "preview", weight: 0}
)

// Names lists the stage names Parse accepts besides integers, for help and errors.
var Names = []string{"stable", "preview", "swap", "final"}

// Weight returns the numeric stage that sends w percent of traffic to the canary.
func Weight(w int) (Stage, error) {
	if w < 0 || w > 100 {
		return Stage{}, fmt.Errorf("stage %d: canary weight must be between 0 and 100", w)
	}
	return Stage{name: strconv.Itoa(w), weight: w}, nil
}

// Parse reads a stage as users type it: "stable", "swap", "final" or an integer
// 0..100 ("10", "90", "100").
func Parse(s string) (Stage, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	switch t {
	case Stable.name:
		return Stable, nil
	case Swap.name:
		return Swap, nil
	case Final.name:
		return Final, nil
	case Preview.name:
		return Preview, nil
	case "":
		return Stage{}, fmt.Errorf("stage is empty: use one of %s or a canary weight 0..100", strings.Join(Names, ", "))
	}
	w, err := strconv.Atoi(strings.TrimSuffix(t, "%"))
	if errors.Is(err, strconv.ErrRange) {
		// A number too long for an int is still a number: say what numbers may be.
		return Stage{}, fmt.Errorf("stage %q: canary weight must be between 0 and 100", s)
	}
	if err != nil {
		return Stage{}, fmt.Errorf("unknown stage %q: use one of %s or a canary weight 0..100", s, strings.Join(Names, ", "))
	}
	if w < 0 || w > 100 {
		return Stage{}, fmt.Errorf("stage %q: canary weight must be between 0 and 100", s)
	}
	return Stage{name: strconv.Itoa(w), weight: w}, nil
}

// String is the canonical name, as stored in release values.
func (s Stage) String() string { return s.name }

// IsZero reports whether s was never set.
func (s Stage) IsZero() bool { return s.name == "" }

// CanaryWeight is the percentage of the default route that goes to the canary.
func (s Stage) CanaryWeight() int { return s.weight }

// ProductionWeight is the percentage of the default route that stays on production.
func (s Stage) ProductionWeight() int { return 100 - s.weight }

// CanaryUp reports whether canary pods run at this stage (every stage but stable and
// final).
func (s Stage) CanaryUp() bool { return s != Stable && s != Final }

// ProductionFromRender reports whether production runs the newly rendered pod template
// at this stage (swap and final) instead of the pinned one.
func (s Stage) ProductionFromRender() bool { return s == Swap || s == Final }

// IsNumeric reports whether s is a plain canary weight (0..100).
func (s Stage) IsNumeric() bool { return !s.IsZero() && s != Stable && s != Swap && s != Final }
