package stages

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in                 string
		want               string
		canary, production int
		canaryUp, rendered bool
		wantErr            bool
	}{
		{in: "stable", want: "stable", canary: 0, production: 100},
		{in: " Stable ", want: "stable", canary: 0, production: 100},
		{in: "10", want: "10", canary: 10, production: 90, canaryUp: true},
		{in: "90", want: "90", canary: 90, production: 10, canaryUp: true},
		{in: "100", want: "100", canary: 100, production: 0, canaryUp: true},
		{in: "0", want: "0", canary: 0, production: 100, canaryUp: true},
		{in: "37%", want: "37", canary: 37, production: 63, canaryUp: true},
		{in: "preview", want: "preview", canary: 0, production: 100, canaryUp: true},
		{in: "swap", want: "swap", canary: 100, production: 0, canaryUp: true, rendered: true},
		{in: "final", want: "final", canary: 0, production: 100, rendered: true},
		{in: "101", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "half", wantErr: true},
		{in: "", wantErr: true},
		{in: "1.5", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := Parse(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want an error", tt.in, s)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if s.String() != tt.want || s.CanaryWeight() != tt.canary || s.ProductionWeight() != tt.production ||
				s.CanaryUp() != tt.canaryUp || s.ProductionFromRender() != tt.rendered {
				t.Errorf("Parse(%q) = {%s canary=%d production=%d up=%v rendered=%v}", tt.in,
					s, s.CanaryWeight(), s.ProductionWeight(), s.CanaryUp(), s.ProductionFromRender())
			}
		})
	}
}

func TestParseErrorNamesTheFix(t *testing.T) {
	_, err := Parse("canary")
	if err == nil || !strings.Contains(err.Error(), "stable, preview, swap, final") || !strings.Contains(err.Error(), "0..100") {
		t.Fatalf("error %v does not list the valid stages", err)
	}
}

// Numbers out of range say so, however long they are: 20 digits overflow an int.
func TestParseNumbersOutOfRange(t *testing.T) {
	for _, in := range []string{"101", "-1", "99999999999999999999", "-99999999999999999999"} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), "between 0 and 100") {
			t.Errorf("Parse(%q): %v, want the weight's range", in, err)
		}
	}
}
