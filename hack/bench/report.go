package main

import (
	"fmt"
	"github.com/helm-canary/helm-canary/internal/benchstream"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// report is everything one benchmark run found; it is also the -json output.
type report struct {
	N          int                `json:"n"`
	KustomizeN int                `json:"kustomize_n,omitempty"`
	Runs       int                `json:"runs"`
	Statistic  string             `json:"statistic"`
	Shapes     []shapeFigures     `json:"shapes"`
	KStream    *benchstream.Stats `json:"kustomize_stream,omitempty"`
	Results    []*result          `json:"results"`
	Checks     []check            `json:"checks"`
	// KustomizeSkipped says why there are no kustomize rows, if there are
	// none.
	KustomizeSkipped string            `json:"kustomize_skipped,omitempty"`
	Environment      map[string]string `json:"environment"`
	// Helm compares helm canary stage with a plain helm upgrade, if it ran.
	Helm *helmFigures `json:"helm,omitempty"`
}

// shapeFigures are one stream shape's headline figures: the time of one render
// of the whole N-workload stream (one op) and its ratio to the floor on the same
// stream.
type shapeFigures struct {
	Shape        benchstream.Shape `json:"shape"`
	Stream       benchstream.Stats `json:"stream"`
	AllNsPerOp   float64           `json:"all_targeted_ns_per_op"`
	AllRatio     float64           `json:"all_targeted_ratio"`
	FewNsPerOp   float64           `json:"few_targeted_ns_per_op"`
	FewRatio     float64           `json:"few_targeted_ratio"`
	FloorNsPerOp float64           `json:"floor_ns_per_op"`
	AllRSSMB     float64           `json:"all_targeted_peak_rss_mb"`
	// The same ratios in CPU time (user+system): on a shared machine wall time
	// also measures the neighbours, CPU time much less so. It counts the garbage
	// collector's work on other cores too, so it is the stricter of the two.
	AllCPURatio float64 `json:"all_targeted_cpu_ratio"`
	FewCPURatio float64 `json:"few_targeted_cpu_ratio"`
}

// check is one ratio or limit. Status is PASS or FAIL for a target, INFO for
// a figure reported without a target.
type check struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	Limit  float64 `json:"limit,omitempty"`
	Status string  `json:"status"`
	Note   string  `json:"note,omitempty"`
}

const statistic = "wall time: median over runs (lower middle for an even count); peak RSS: maximum over runs"

// newReport turns the measured results into rows and checks. The results
// are, in order, for each shape of o.shapes (whose streams are streams):
// render all targeted, render few targeted, floor (all at N); then, when
// kustomize ran, render all targeted and kustomize (both at the kustomize N,
// block style).
func newReport(o *options, streams []benchstream.Stats, kst benchstream.Stats, res []*result) *report {
	r := &report{
		N: o.n, Runs: o.runs, Statistic: statistic,
		Results:          slices.Clone(res[:3*len(o.shapes)]),
		KustomizeSkipped: o.kustomizeDisabled,
	}
	var blockAll *result
	for i, sh := range o.shapes {
		all, few, floor := res[3*i], res[3*i+1], res[3*i+2]
		if sh == benchstream.Block || blockAll == nil {
			blockAll = all
		}
		f := shapeFigures{Shape: sh, Stream: streams[i],
			AllNsPerOp: all.WallMedian * 1e9, AllRatio: all.WallMedian / floor.WallMedian,
			FewNsPerOp: few.WallMedian * 1e9, FewRatio: few.WallMedian / floor.WallMedian,
			FloorNsPerOp: floor.WallMedian * 1e9, AllRSSMB: kibToMB(all.MaxRSSKiB),
			AllCPURatio: all.CPUMedian / floor.CPUMedian, FewCPURatio: few.CPUMedian / floor.CPUMedian}
		r.Shapes = append(r.Shapes, f)
		by, allRatio, fewRatio := "wall", f.AllRatio, f.FewRatio
		if o.byCPU {
			by, allRatio, fewRatio = "CPU", f.AllCPURatio, f.FewCPURatio
		}
		r.limit(fmt.Sprintf("%s: render all targeted / floor, %s, N=%d", sh, by, o.n), allRatio, "x", o.allMax)
		r.limit(fmt.Sprintf("%s: render %d targeted / floor, %s, N=%d", sh, min(fewTargets, o.n), by, o.n), fewRatio, "x", o.fewMax)
		r.limit(fmt.Sprintf("%s: peak RSS, render all targeted, N=%d", sh, o.n), f.AllRSSMB, "MB", o.rssMaxMB)
	}

	if k0 := 3 * len(o.shapes); len(res) == k0+2 {
		allSmall, k := res[k0], res[k0+1]
		r.KustomizeN, r.KStream = o.kustomizeN, &kst
		r.Results = append(r.Results, allSmall, k)
		if o.kustomizeN < o.n {
			scale := float64(o.n) / float64(o.kustomizeN)
			note := fmt.Sprintf("EXTRAPOLATED, not measured: kustomize time at N=%d scaled linearly by %.4gx to N=%d; a LOWER BOUND, since kustomize's time grows faster than linearly with N", o.kustomizeN, scale, o.n)
			kx := &result{
				Name: k.Name, Shape: k.Shape, N: o.n, Argv: k.Argv,
				WallMedian: k.WallMedian * scale, WallMin: k.WallMin * scale,
				Extrapolated: true, Note: note,
			}
			r.Results = append(r.Results, kx)
			r.Checks = append(r.Checks, check{Name: fmt.Sprintf("kustomize (extrapolated to N=%d) / render all targeted, wall", o.n), Value: kx.WallMedian / blockAll.WallMedian, Unit: "x", Status: "INFO", Note: note})
		}
		r.Checks = append(r.Checks, check{Name: fmt.Sprintf("kustomize / render all targeted, wall, both measured at N=%d", o.kustomizeN), Value: k.WallMedian / allSmall.WallMedian, Unit: "x", Status: "INFO"})
	}
	return r
}

// limit records a "value at most max" target.
func (r *report) limit(name string, v float64, unit string, maxV float64) {
	c := check{Name: name, Value: v, Unit: unit, Limit: maxV, Status: "PASS"}
	if v > maxV {
		c.Status = "FAIL"
	}
	r.Checks = append(r.Checks, c)
}

func (r *report) failed() bool {
	if r.Helm.failed() {
		return true
	}
	for _, c := range r.Checks {
		if c.Status == "FAIL" {
			return true
		}
	}
	return false
}

// header is the context a reader needs before any figure.
func (r *report) header() []string {
	var h []string
	for _, f := range r.Shapes {
		h = append(h, fmt.Sprintf("%s stream: N=%d workloads, %d documents, %.2f MB (Helm 3 post-renderer shape)", f.Shape, r.N, f.Stream.Documents, float64(f.Stream.Bytes)/1e6))
	}
	h = append(h, fmt.Sprintf("runs: %d, interleaved; %s", r.Runs, statistic))
	keys := make([]string, 0, len(r.Environment))
	for k := range r.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var env []string
	for _, k := range keys {
		env = append(env, k+"="+r.Environment[k])
	}
	h = append(h, "machine: "+strings.Join(env, ", "))
	if r.KustomizeSkipped != "" {
		h = append(h, "kubectl kustomize: SKIPPED, "+r.KustomizeSkipped)
	}
	return h
}

// rows renders the result table cells; unmeasured cells are "-".
func (r *report) rows() [][]string {
	rows := [][]string{{"shape", "command", "N", "wall median (s)", "wall min (s)", "CPU median (s)", "peak RSS (MB)", "output (MB)"}}
	for _, x := range r.Results {
		n := fmt.Sprint(x.N)
		if x.Extrapolated {
			rows = append(rows, []string{string(x.Shape), x.Name + " [EXTRAPOLATED from N=" + fmt.Sprint(r.KustomizeN) + ", lower bound]", n,
				fmt.Sprintf("%.3f", x.WallMedian), fmt.Sprintf("%.3f", x.WallMin), "-", "-", "-"})
			continue
		}
		rows = append(rows, []string{string(x.Shape), x.Name, n,
			fmt.Sprintf("%.3f", x.WallMedian), fmt.Sprintf("%.3f", x.WallMin), fmt.Sprintf("%.3f", x.CPUMedian),
			fmt.Sprintf("%.1f", kibToMB(x.MaxRSSKiB)), fmt.Sprintf("%.2f", float64(x.OutBytes)/1e6)})
	}
	return rows
}

// shapeRows is the headline table: per shape, one render of the N-workload stream
// in ns/op and as a ratio to the floor on the same stream.
func (r *report) shapeRows() [][]string {
	rows := [][]string{{"shape", "MB", "all targeted ns/op", "all / floor", fmt.Sprintf("%d targeted ns/op", min(fewTargets, r.N)), fmt.Sprintf("%d / floor", min(fewTargets, r.N)), "floor ns/op", fmt.Sprintf("peak RSS all, N=%d (MB)", r.N), "CPU: all / floor", fmt.Sprintf("CPU: %d / floor", min(fewTargets, r.N))}}
	for _, f := range r.Shapes {
		rows = append(rows, []string{string(f.Shape), fmt.Sprintf("%.2f", float64(f.Stream.Bytes)/1e6),
			fmt.Sprintf("%.0f", f.AllNsPerOp), fmtValue(f.AllRatio) + "x", fmt.Sprintf("%.0f", f.FewNsPerOp), fmtValue(f.FewRatio) + "x",
			fmt.Sprintf("%.0f", f.FloorNsPerOp), fmt.Sprintf("%.1f", f.AllRSSMB), fmtValue(f.AllCPURatio) + "x", fmtValue(f.FewCPURatio) + "x"})
	}
	return rows
}

func (r *report) checkRows() [][]string {
	rows := [][]string{{"figure", "value", "target", "result"}}
	for _, c := range r.Checks {
		target := "-"
		if c.Status != "INFO" {
			target = fmt.Sprintf("<= %g %s", c.Limit, c.Unit)
		}
		rows = append(rows, []string{c.Name, fmtValue(c.Value) + " " + c.Unit, target, c.Status})
	}
	return rows
}

// writeText prints the human-readable report.
func (r *report) writeText(w io.Writer) {
	fmt.Fprintln(w)
	for _, h := range r.header() {
		fmt.Fprintln(w, h)
	}
	for _, t := range [][][]string{r.rows(), r.shapeRows(), r.checkRows()} {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, row := range t {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		tw.Flush()
	}
	r.writeNotes(w, "")
	if r.Helm != nil {
		fmt.Fprint(w, r.Helm.text())
	}
}

// markdown renders the report as a fragment for the README.
func (r *report) markdown() string {
	var b strings.Builder
	for _, h := range r.header() {
		fmt.Fprintf(&b, "%s  \n", h)
	}
	for _, t := range [][][]string{r.rows(), r.shapeRows(), r.checkRows()} {
		b.WriteString("\n")
		for i, row := range t {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
			if i == 0 {
				fmt.Fprintf(&b, "|%s\n", strings.Repeat(" --- |", len(row)))
			}
		}
	}
	r.writeNotes(&b, "- ")
	if r.Helm != nil {
		b.WriteString("\n```" + r.Helm.text() + "```\n")
	}
	return b.String()
}

// writeNotes states what the figures are not, so no one quotes them wrong.
func (r *report) writeNotes(w io.Writer, bullet string) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%sThe floor is hack/yamlfloor: yaml.v3 decode of every document into a yaml.Node and re-encode, no transformation.\n", bullet)
	if r.KustomizeN > 0 {
		fmt.Fprintf(w, "%skubectl kustomize adds one label (labels: pairs, metadata only) to every object.", bullet)
		if r.KustomizeN < r.N {
			fmt.Fprintf(w, " It was MEASURED at N=%d only; its N=%d figure is an EXTRAPOLATION (linear scaling), not a measurement, and a LOWER BOUND: kustomize's time grows faster than linearly with N.", r.KustomizeN, r.N)
		}
		fmt.Fprintln(w)
	}
}

// fmtValue prints three significant digits without falling into exponent
// notation for the large kustomize ratios.
func fmtValue(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
