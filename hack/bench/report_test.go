package main

import (
	"github.com/helm-canary/helm-canary/internal/benchstream"
	"strings"
	"testing"
)

// TestReport checks the arithmetic the PASS/FAIL verdicts rest on, per stream
// shape, and that the extrapolated kustomize row can never be mistaken for a
// measurement.
func TestReport(t *testing.T) {
	row := func(wall float64, rssKiB int64) *result {
		return &result{WallMedian: wall, WallMin: wall, MaxRSSKiB: rssKiB}
	}
	o := &options{n: 3000, kustomizeN: 300, runs: 3, allMax: 1.2, fewMax: 0.15, rssMaxMB: 150,
		shapes: []benchstream.Shape{benchstream.Block, benchstream.Flow}}
	res := []*result{
		row(1.1, 150_000), // block, all targeted: 1.1x the floor, 153.6 MB
		row(0.1, 20_000),  // block, 10 targeted: 0.1x
		row(1.0, 14_000),  // block floor
		row(2.0, 100_000), // flow, all targeted: 2.5x the floor
		row(0.1, 20_000),  // flow, 10 targeted: 0.125x
		row(0.8, 14_000),  // flow floor
		row(0.1, 20_000),  // all targeted at N=300
		row(2.2, 90_000),  // kustomize at N=300
	}
	r := newReport(o, make([]benchstream.Stats, 2), benchstream.Stats{}, res)

	want := []string{"PASS", "PASS", "FAIL", "FAIL", "PASS", "PASS", "INFO", "INFO"}
	if len(r.Checks) != len(want) {
		t.Fatalf("%d checks, want %d", len(r.Checks), len(want))
	}
	for i, c := range r.Checks {
		if c.Status != want[i] {
			t.Errorf("check %q: %s, want %s", c.Name, c.Status, want[i])
		}
	}
	if !strings.HasPrefix(r.Checks[3].Name, "flow: ") || r.Checks[3].Value != 2.5 {
		t.Errorf("check %q = %v, want flow's 2.0/0.8", r.Checks[3].Name, r.Checks[3].Value)
	}
	if f := r.Shapes[1]; f.Shape != benchstream.Flow || f.AllNsPerOp != 2e9 || f.FewRatio != 0.125 || f.FloorNsPerOp != 0.8e9 {
		t.Errorf("flow figures %+v", f)
	}
	if got := r.Checks[6].Value; got < 19.99 || got > 20.01 { // 2.2*10/1.1: block's render
		t.Errorf("extrapolated kustomize/render = %v, want 22/1.1", got)
	}
	if got := r.Checks[7].Value; got < 21.99 || got > 22.01 {
		t.Errorf("measured kustomize/render = %v, want 22", got)
	}
	if !r.failed() {
		t.Error("failed() = false with a FAIL check")
	}

	last := r.Results[len(r.Results)-1]
	if !last.Extrapolated || last.N != 3000 || last.WallMedian < 21.99 || last.WallMedian > 22.01 {
		t.Errorf("last row %+v, want the kustomize time extrapolated to N=3000", last)
	}
	for _, out := range []string{r.markdown(), text(r)} {
		if !strings.Contains(out, "EXTRAPOLATED") || !strings.Contains(out, "LOWER BOUND") {
			t.Errorf("output does not flag the extrapolation:\n%s", out)
		}
		if !strings.Contains(out, "all targeted ns/op") || !strings.Contains(out, "2.5x") {
			t.Errorf("output lacks the per-shape ns/op and ratios:\n%s", out)
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

// TestReportByCPU: with -ratio-by cpu the ratio targets are checked on CPU time.
func TestReportByCPU(t *testing.T) {
	row := func(wall, cpu float64) *result { return &result{WallMedian: wall, CPUMedian: cpu, MaxRSSKiB: 1000} }
	o := &options{n: 3000, runs: 1, allMax: 1.2, fewMax: 0.15, rssMaxMB: 150, byCPU: true,
		shapes: []benchstream.Shape{benchstream.Block}}
	// Wall says 2x (a busy neighbour), CPU says 0.9x.
	r := newReport(o, make([]benchstream.Stats, 1), benchstream.Stats{}, []*result{row(2, 0.9), row(0.1, 0.1), row(1, 1)})
	if c := r.Checks[0]; c.Status != "PASS" || c.Value != 0.9 || !strings.Contains(c.Name, "CPU") {
		t.Errorf("check %+v, want CPU's 0.9x PASS", c)
	}
}
