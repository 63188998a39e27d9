package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/helm-canary/helm-canary/internal/benchstream"
)

// job is one benchmarked command: a separate process that reads Input on
// stdin and writes stdout to a file, so that its output size can be reported
// and no pipe reader on our side influences its timing.
type job struct {
	Name  string            // row label
	Shape benchstream.Shape // layout of the input stream
	N     int               // workloads in the input stream
	Argv  []string          // program and arguments
	Input string            // file fed on stdin; empty means /dev/null
	Dir   string            // working directory; empty means ours
}

// sample is what one run of a job measured.
type sample struct {
	Wall     time.Duration
	CPU      time.Duration // user+system, from rusage
	MaxRSS   int64         // KiB (ru_maxrss on Linux)
	OutBytes int64
}

// result is the summary of all runs of a job.
type result struct {
	Name  string            `json:"name"`
	Shape benchstream.Shape `json:"shape"`
	N     int               `json:"n"`
	Argv  []string          `json:"argv"`
	// WallMedian is the figure every ratio uses: the median over runs (the
	// lower middle one for an even count, so it is always a measured value).
	// It resists a single disturbed run on a shared machine; WallMin is the
	// best case, kept for reference.
	WallMedian float64   `json:"wall_seconds_median"`
	WallMin    float64   `json:"wall_seconds_min"`
	Walls      []float64 `json:"wall_seconds_all"`
	CPUMedian  float64   `json:"cpu_seconds_median"`
	// MaxRSSKiB is the largest peak RSS over all runs: the memory target is
	// about the worst case, so the conservative figure is reported.
	MaxRSSKiB int64 `json:"max_rss_kib"`
	OutBytes  int64 `json:"out_bytes"`
	// Extrapolated is set on rows whose figures were scaled, not measured.
	Extrapolated bool   `json:"extrapolated,omitempty"`
	Note         string `json:"note,omitempty"`

	samples []sample
}

// runOnce runs j once. A non-zero exit, a signal or an empty output is an
// error carrying the command's stderr, because a benchmark of a command that
// did not do its job measures nothing.
func runOnce(j job, outPath string) (sample, error) {
	stdin, err := os.Open(devNullIfEmpty(j.Input))
	if err != nil {
		return sample{}, err
	}
	defer stdin.Close()
	stdout, err := os.Create(outPath)
	if err != nil {
		return sample{}, err
	}
	defer stdout.Close()

	var stderr bytes.Buffer
	cmd := exec.Command(j.Argv[0], j.Argv[1:]...)
	cmd.Dir = j.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &stderr

	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)

	if err != nil {
		return sample{}, fmt.Errorf("%s: %s: %v\n--- stderr ---\n%s", j.Name, strings.Join(j.Argv, " "), err, tail(stderr.String(), 4000))
	}
	info, err := stdout.Stat()
	if err != nil {
		return sample{}, err
	}
	if info.Size() == 0 {
		return sample{}, fmt.Errorf("%s: %s exited 0 but wrote nothing\n--- stderr ---\n%s", j.Name, strings.Join(j.Argv, " "), tail(stderr.String(), 4000))
	}
	s := sample{Wall: wall, OutBytes: info.Size()}
	// wait4's rusage covers the process and its waited-for descendants, so
	// a wrapper (such as the kubectl version dispatcher) still reports the
	// peak of the real worker.
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.MaxRSS = ru.Maxrss
		s.CPU = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	}
	return s, nil
}

// runJobs runs every job runs times, interleaved (run 1 of every job, then
// run 2 of every job, ...), so that a slow period on the machine spreads over
// all rows instead of skewing the ratio between two of them.
//
// Job i writes its stdout to outPrefix + i + ".yaml".
func runJobs(jobs []job, runs int, outPrefix string, logf func(string, ...any)) ([]*result, error) {
	res := make([]*result, len(jobs))
	for i, j := range jobs {
		res[i] = &result{Name: j.Name, Shape: j.Shape, N: j.N, Argv: j.Argv}
	}
	for r := 1; r <= runs; r++ {
		for i, j := range jobs {
			s, err := runOnce(j, fmt.Sprintf("%s%d.yaml", outPrefix, i))
			if err != nil {
				return nil, err
			}
			logf("run %d/%d  %-5s %-34s %8.3fs  %7.1f MB", r, runs, j.Shape, j.Name, s.Wall.Seconds(), kibToMB(s.MaxRSS))
			res[i].samples = append(res[i].samples, s)
		}
	}
	for _, r := range res {
		r.summarize()
	}
	return res, nil
}

// summarize fills the summary fields from the samples.
func (r *result) summarize() {
	walls := make([]float64, len(r.samples))
	cpus := make([]float64, len(r.samples))
	for i, s := range r.samples {
		walls[i] = s.Wall.Seconds()
		cpus[i] = s.CPU.Seconds()
		r.MaxRSSKiB = max(r.MaxRSSKiB, s.MaxRSS)
		r.OutBytes = s.OutBytes
	}
	r.Walls = walls
	r.WallMedian = median(walls)
	r.WallMin = slices.Min(walls)
	r.CPUMedian = median(cpus)
}

// median returns the median of xs, taking the lower middle element for an
// even count so the figure is one that was actually measured.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func devNullIfEmpty(p string) string {
	if p == "" {
		return os.DevNull
	}
	return p
}

// tail keeps the last n bytes of s: the end of a failing command's stderr is
// where the error usually is.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// kibToMB converts ru_maxrss KiB to decimal megabytes (10^6 bytes), the unit
// the 200 MB target is stated in.
func kibToMB(k int64) float64 { return float64(k) * 1024 / 1e6 }
