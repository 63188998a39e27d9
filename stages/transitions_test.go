package stages

import (
	"strings"
	"testing"
)

func TestPlanTransition(t *testing.T) {
	w := func(n int) Stage { s, _ := Weight(n); return s }
	tests := []struct {
		name      string
		from      State
		to        Stage
		force     bool
		steps     string // "final(draining) final"; +ready: wait for the canary's pods
		restore   bool
		promote   bool
		wantError string
	}{
		{name: "adopt at stable", from: State{}, to: Stable, steps: "stable", restore: true},
		{name: "start a canary", from: State{Stage: Stable}, to: w(10), steps: "0(draining)+ready 10"},
		{name: "start a canary at 0", from: State{Stage: Stable}, to: w(0), steps: "0(draining)+ready 0"},
		{name: "start a preview", from: State{}, to: Preview, steps: "0(draining)+ready preview"},
		{name: "a new canary after final", from: State{Stage: Final}, to: w(10), steps: "0(draining)+ready 10"},
		{name: "after an interrupted warm-up", from: State{Stage: w(0), Draining: true}, to: w(10), steps: "0(draining)+ready 10"},
		{name: "rollback during a warm-up", from: State{Stage: w(0), Draining: true}, to: Stable, steps: "stable", restore: true},
		{name: "canary up", from: State{Stage: w(10)}, to: w(50), steps: "50"},
		{name: "back down", from: State{Stage: w(90)}, to: w(10), steps: "10"},
		{name: "rollback from 90", from: State{Stage: w(90)}, to: Stable, steps: "stable", restore: true},
		{name: "rollback from swap", from: State{Stage: Swap}, to: Stable, steps: "stable", restore: true},
		{name: "swap at 100", from: State{Stage: w(100)}, to: Swap, steps: "swap", promote: true},
		{name: "swap again", from: State{Stage: Swap}, to: Swap, steps: "swap", promote: true},
		{name: "swap at 90", from: State{Stage: w(90)}, to: Swap, wantError: "stage 100 first"},
		{name: "swap from stable", from: State{Stage: Stable}, to: Swap, wantError: "release is at stage stable"},
		{name: "forced swap", from: State{Stage: w(10)}, to: Swap, force: true, steps: "swap", promote: true},
		{name: "final after swap", from: State{Stage: Swap}, to: Final, steps: "final(draining) final", promote: true},
		{name: "final interrupted", from: State{Stage: Final, Draining: true}, to: Final, steps: "final(draining) final", promote: true},
		{name: "final again", from: State{Stage: Final}, to: Final, steps: "final", promote: true},
		{name: "final from stable", from: State{Stage: Stable}, to: Final, wantError: "stage swap first"},
		{name: "final from 100", from: State{Stage: w(100)}, to: Final, wantError: "stage swap first"},
		{name: "forced final", from: State{Stage: w(100)}, to: Final, force: true, steps: "final(draining) final", promote: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanTransition(tt.from, tt.to, tt.force)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) || !strings.Contains(err.Error(), "--force") {
					t.Fatalf("err = %v, want one mentioning %q and --force", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			for _, s := range p.Steps {
				name := s.Stage.String()
				if s.Draining {
					name += "(draining)"
				}
				if s.WaitReady {
					name += "+ready"
				}
				steps = append(steps, name)
			}
			if strings.Join(steps, " ") != tt.steps || p.Restore != tt.restore || p.Promote != tt.promote {
				t.Errorf("plan = %v restore=%v promote=%v, want %s restore=%v promote=%v", steps, p.Restore, p.Promote, tt.steps, tt.restore, tt.promote)
			}
		})
	}
}
