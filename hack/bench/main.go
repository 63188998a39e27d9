// Command bench is the driver behind `make bench`: it times helm-canary's
// renderer against a floor and against kustomize on the same machine, in the
// same run, and checks the performance targets.
//
// Why a comparison and not absolute numbers: absolute seconds depend on the
// machine, so the targets are ratios to "the floor", hack/yamlfloor, which
// only parses every document into a yaml.v3 Node and re-encodes it. A
// post-renderer that must inspect every document cannot be much cheaper than
// that, so "render costs at most 1.2x the floor" is a target that means the
// same thing on a laptop and on CI.
//
// What it does:
//
//  1. generates Helm-3-post-renderer-shaped streams of N workloads (a
//     ConfigMap, Service and Deployment each; see benchstream.WriteShape), one
//     per -shapes: block style, flow style, and block style mixing comments
//     and CRLF line ends, each into a temporary file;
//  2. builds hack/yamlfloor into a temporary directory;
//  3. times, as separate processes reading a stream file on stdin and writing
//     stdout to a file, interleaved over -runs runs, for every shape:
//     a. helm-canary render --stage 10 (every workload targeted),
//     b. helm-canary render --stage 10 --workload wl-0001 ... wl-0010,
//     c. yamlfloor on the same stream (each shape has its own floor),
//     and, on a block stream of only -kustomize-n workloads because kustomize is
//     too slow for N (several minutes at N=3000):
//     d. helm-canary render --stage 10 (every workload targeted), and
//     e. kubectl kustomize adding one label to every object,
//     whose time is then scaled linearly to N. That scaled figure is an
//     extrapolation, and every output says so. It is also a lower bound:
//     kustomize (v5.5.0) grows much faster than linearly on such streams
//     (measured when this driver was written: 0.6 s at N=150, 1.4 s at 300,
//     8 s at 600, 52 s at 1200), so row d next to row e is the fair,
//     measured comparison and the scaled row only says "at least".
//  4. with -helm-runs > 0, times helm canary's moves (the first move from stable,
//     a traffic move, the rollback) against plain Helm doing the same to a
//     release of the same objects, on a local API server (helm.go);
//  5. prints a table, per shape the ns/op and ratios to the floor, and
//     PASS/FAIL per target and shape; with -check a
//     FAIL makes the exit status non-zero. A command that fails (non-zero
//     exit, or no output) always fails the benchmark and its stderr is shown.
//
// Wall times are medians over the runs; peak RSS is the largest over the
// runs (ru_maxrss from wait4, KiB on Linux, shown in decimal MB).
//
// Usage (from the module root, after make build):
//
//	go run ./hack/bench [-n 3000] [-shapes block,flow,mixed] [-ratio-by wall|cpu] [-kustomize-n 300] [-runs 3] [-check] [-json] [-out FILE]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/helm-canary/helm-canary/internal/benchstream"
)

// floorPkg is built fresh each run so the floor always uses the same Go
// toolchain and yaml.v3 version as the renderer being compared with it.
const floorPkg = "github.com/helm-canary/helm-canary/hack/yamlfloor"

// stage is the canary stage every render run asks for (the CLI contract's
// own example); the cost being measured is the same at any stage.
const stage = "10"

// fewTargets is how many workloads the "few targeted" run names.
const fewTargets = 10

// options are the command-line flags.
type options struct {
	n, kustomizeN     int
	runs              int
	helmCanary        string
	kubectl           string
	out               string
	jsonOut, check    bool
	keep              bool
	allMax, fewMax    float64
	rssMaxMB          float64
	kustomizeDisabled string // why the kustomize rows are skipped, if they are
	helmRuns          int
	helmMax           float64
	shapes            []benchstream.Shape
	byCPU             bool // the ratio targets are checked on CPU time, not wall time
}

func main() { os.Exit(run()) }

func run() int {
	var o options
	flag.IntVar(&o.n, "n", 3000, "workloads in the main stream (3 documents each)")
	flag.IntVar(&o.kustomizeN, "kustomize-n", 300, "workloads in the smaller stream kubectl kustomize is timed on; 0 skips kustomize")
	flag.IntVar(&o.runs, "runs", 3, "runs of each command; wall time is the median, peak RSS the maximum")
	flag.StringVar(&o.helmCanary, "helm-canary", "bin/helm-canary", "helm-canary binary to benchmark")
	flag.StringVar(&o.kubectl, "kubectl", "kubectl", "kubectl binary for the kustomize comparison (the default is looked up in PATH, then /usr/bin/kubectl); if missing, the kustomize rows are skipped")
	flag.StringVar(&o.out, "out", "", "also write the figures as a markdown fragment to this file (for the README)")
	flag.BoolVar(&o.jsonOut, "json", false, "print the figures as JSON on stdout (the table then goes to stderr)")
	flag.BoolVar(&o.check, "check", false, "exit non-zero if a target FAILs")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (streams, outputs) and print its path")
	flag.Float64Var(&o.allMax, "max-all-ratio", 1.2, "target, per shape: all-targeted render time / floor time at most this")
	flag.Float64Var(&o.fewMax, "max-few-ratio", 0.15, "target, per shape: 10-targeted render time / floor time at most this")
	flag.Float64Var(&o.rssMaxMB, "max-rss-mb", 150, "target, per shape: peak RSS of the all-targeted render at N at most this many MB (10^6 bytes)")
	ratioBy := flag.String("ratio-by", "wall", "which time the ratio targets are checked on: wall, or cpu (user+system; steadier on a shared machine, and stricter, as it counts the garbage collector's work on other cores)")
	shapes := flag.String("shapes", "block,flow,mixed", "comma-separated stream shapes to measure: block, flow (flow-style mappings and lists), mixed (comments and CRLF line ends)")
	flag.IntVar(&o.helmRuns, "helm-runs", 5, "interleaved runs of helm canary's moves (first move from stable, 10 -> 50, rollback) and plain Helm's on a release of the same objects, on a local API server; 0 skips them")
	flag.Float64Var(&o.helmMax, "max-helm-ratio", 1.3, "target, per move: helm canary / plain Helm doing the same at most this (checked on the time -ratio-by says)")
	flag.Parse()
	if flag.NArg() > 0 || o.n < 1 || o.runs < 1 || o.kustomizeN < 0 {
		flag.Usage()
		return 2
	}
	switch *ratioBy {
	case "wall":
	case "cpu":
		o.byCPU = true
	default:
		fmt.Fprintf(os.Stderr, "bench: -ratio-by %q: want wall or cpu\n", *ratioBy)
		return 2
	}
	for _, name := range strings.Split(*shapes, ",") {
		sh, err := benchstream.ParseShape(strings.TrimSpace(name))
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -shapes: %v\n", err)
			return 2
		}
		o.shapes = append(o.shapes, sh)
	}
	// Timing kustomize on more workloads than N would make the "scaled to N"
	// row a scaling down; at N itself it is simply measured.
	o.kustomizeN = min(o.kustomizeN, o.n)

	rep, err := bench(&o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: FAILED: %v\n", err)
		return 1
	}

	table := os.Stdout
	if o.jsonOut {
		table = os.Stderr
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
	}
	if o.helmRuns > 0 {
		logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }
		hc, _ := filepath.Abs(o.helmCanary)
		if rep.Helm, err = benchHelm(context.Background(), o.helmRuns, hc, o.helmMax, o.byCPU, logf); err != nil {
			fmt.Fprintf(os.Stderr, "bench: FAILED: %v\n", err)
			return 1
		}
	}
	rep.writeText(table)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s\n", o.out)
	}
	if o.check && rep.failed() {
		fmt.Fprintln(os.Stderr, "bench: a target FAILED (-check)")
		return 1
	}
	return 0
}

// bench prepares the inputs, runs every job and assembles the report.
func bench(o *options) (*report, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

	hc, err := exec.LookPath(o.helmCanary)
	if err != nil {
		return nil, fmt.Errorf("helm-canary binary: %v (run make build first, or pass -helm-canary)", err)
	}
	if hc, err = filepath.Abs(hc); err != nil {
		return nil, err
	}
	kubectl := findKubectl(o)

	tmp, err := os.MkdirTemp("", "helm-canary-bench-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	floor := filepath.Join(tmp, "yamlfloor")
	logf("building %s", floorPkg)
	if out, err := exec.Command("go", "build", "-o", floor, floorPkg).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v\n%s", floorPkg, err, out)
	}

	few := []string{hc, "render", "--stage", stage}
	for i := 1; i <= min(fewTargets, o.n); i++ {
		few = append(few, "--workload", benchstream.Name(i))
	}
	var jobs []job
	var streams []benchstream.Stats
	for _, sh := range o.shapes {
		streamPath := filepath.Join(tmp, "stream-"+string(sh)+".yaml")
		st, err := writeStreamFile(streamPath, o.n, sh)
		if err != nil {
			return nil, err
		}
		streams = append(streams, st)
		logf("%s stream: N=%d workloads, %d documents, %d bytes (%.2f MB)", sh, o.n, st.Documents, st.Bytes, float64(st.Bytes)/1e6)
		jobs = append(jobs,
			job{Name: "helm-canary render, all targeted", Shape: sh, N: o.n, Argv: []string{hc, "render", "--stage", stage}, Input: streamPath},
			job{Name: fmt.Sprintf("helm-canary render, %d targeted", min(fewTargets, o.n)), Shape: sh, N: o.n, Argv: few, Input: streamPath},
			job{Name: "yamlfloor (floor)", Shape: sh, N: o.n, Argv: []string{floor}, Input: streamPath},
		)
	}

	// The kustomize comparison runs on a smaller stream. Rendering that same
	// small stream too gives a measured, unextrapolated ratio next to the
	// extrapolated one.
	var kst benchstream.Stats
	if kubectl != "" {
		kdir := filepath.Join(tmp, "kustomize")
		if kst, err = writeKustomization(kdir, o.kustomizeN); err != nil {
			return nil, err
		}
		logf("kustomize stream: N=%d workloads, %d documents, %d bytes", o.kustomizeN, kst.Documents, kst.Bytes)
		jobs = append(jobs,
			job{Name: "helm-canary render, all targeted", Shape: benchstream.Block, N: o.kustomizeN, Argv: []string{hc, "render", "--stage", stage}, Input: filepath.Join(kdir, "stream.yaml")},
			job{Name: "kubectl kustomize (+1 label)", Shape: benchstream.Block, N: o.kustomizeN, Argv: []string{kubectl, "kustomize", kdir}},
		)
	} else {
		logf("skipping kubectl kustomize: %s", o.kustomizeDisabled)
	}

	results, err := runJobs(jobs, o.runs, filepath.Join(tmp, "out-"), logf)
	if err != nil {
		return nil, err
	}

	rep := newReport(o, streams, kst, results)
	rep.Environment = environment(kubectl)
	return rep, nil
}

// writeStreamFile writes the n-workload stream of the given shape to path.
func writeStreamFile(path string, n int, shape benchstream.Shape) (benchstream.Stats, error) {
	f, err := os.Create(path)
	if err != nil {
		return benchstream.Stats{}, err
	}
	st, err := benchstream.WriteShape(f, n, shape)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return st, err
}

// writeKustomization makes dir a kustomization whose only resource is the
// n-workload stream and whose only transformation is one extra label on
// every object: the smallest edit kustomize can be asked for, so its time is
// essentially its own load/parse/emit cost. The labels field (not the
// deprecated commonLabels) without includeSelectors touches metadata only,
// leaving selectors and pod templates alone.
func writeKustomization(dir string, n int) (benchstream.Stats, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return benchstream.Stats{}, err
	}
	st, err := writeStreamFile(filepath.Join(dir, "stream.yaml"), n, benchstream.Block)
	if err != nil {
		return st, err
	}
	const k = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- stream.yaml\nlabels:\n- pairs:\n    bench: \"1\"\n"
	return st, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644)
}

// findKubectl resolves the kubectl to use, or returns "" and records why the
// kustomize rows are skipped. kubectl is optional: the targets that matter
// do not depend on it.
func findKubectl(o *options) string {
	if o.kustomizeN == 0 {
		o.kustomizeDisabled = "-kustomize-n 0"
		return ""
	}
	tried := []string{o.kubectl}
	if o.kubectl == "kubectl" { // the default: also try where the machine image puts it
		tried = append(tried, "/usr/bin/kubectl")
	}
	for _, c := range tried {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	o.kustomizeDisabled = fmt.Sprintf("kubectl not found (tried %s)", strings.Join(tried, ", "))
	return ""
}

// environment describes the machine, since every absolute figure depends on
// it.
func environment(kubectl string) map[string]string {
	env := map[string]string{
		"go":   runtime.Version(),
		"os":   runtime.GOOS + "/" + runtime.GOARCH,
		"cpus": fmt.Sprint(runtime.NumCPU()),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				env["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if kubectl != "" {
		if out, err := exec.Command(kubectl, "version", "--client").Output(); err == nil {
			for line := range strings.SplitSeq(string(out), "\n") {
				if v, ok := strings.CutPrefix(line, "Kustomize Version: "); ok {
					env["kustomize"] = strings.TrimSpace(v)
				}
			}
		}
	}
	return env
}
