package main

import (
	"github.com/helm-canary/helm-canary/internal/benchstream"
	"strings"
	"testing"
)

// TestReport checks the arithmetic the PASS/FAIL verdicts rest on, and that
// the extrapolated kustomize row can never be mistaken for a measurement.
func TestReport(t *testing.T) {
	row := func(wall float64, rssKiB int64) *result {
		return &result{WallMedian: wall, WallMin: wall, MaxRSSKiB: rssKiB}
	}
	o := &options{n: 3000, kustomizeN: 300, runs: 3, allMax: 1.5, fewMax: 0.3, rssMaxMB: 200}
	res := []*result{
		row(1.4, 250_000), // all targeted: 1.4x the floor, 256 MB
		row(0.2, 20_000),  // 10 targeted: 0.2x
		row(1.0, 14_000),  // floor
		row(0.1, 20_000),  // all targeted at N=300
		row(2.0, 90_000),  // kustomize at N=300
	}
	r := newReport(o, benchstream.Stats{}, benchstream.Stats{}, res)

	want := []string{"PASS", "PASS", "FAIL", "INFO", "INFO"}
	if len(r.Checks) != len(want) {
		t.Fatalf("%d checks, want %d", len(r.Checks), len(want))
	}
	for i, c := range r.Checks {
		if c.Status != want[i] {
			t.Errorf("check %q: %s, want %s", c.Name, c.Status, want[i])
		}
	}
	if got := r.Checks[3].Value; got < 14.28 || got > 14.29 { // 2.0*10/1.4
		t.Errorf("extrapolated kustomize/render = %v, want 20/1.4", got)
	}
	if got := r.Checks[4].Value; got != 20 {
		t.Errorf("measured kustomize/render = %v, want 20", got)
	}
	if !r.failed() {
		t.Error("failed() = false with a FAIL check")
	}

	last := r.Results[len(r.Results)-1]
	if !last.Extrapolated || last.N != 3000 || last.WallMedian != 20 {
		t.Errorf("last row %+v, want the kustomize time extrapolated to N=3000", last)
	}
	for _, out := range []string{r.markdown(), text(r)} {
		if !strings.Contains(out, "EXTRAPOLATED") || !strings.Contains(out, "LOWER BOUND") {
			t.Errorf("output does not flag the extrapolation:\n%s", out)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func text(r *report) string {
	var b strings.Builder
	r.writeText(&b)
	return b.String()
}
