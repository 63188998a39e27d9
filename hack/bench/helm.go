package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	"github.com/helm-canary/helm-canary/internal/testhelm"
)

// helmFigures compares helm canary's commands with plain Helm doing the same to a
// release of the same objects, on a local API server with simulated nodes (pods
// become Ready), interleaved, one comparison per kind of move a user makes:
//
//   - the first move from stable to a canary weight with a new version: helm
//     canary starts the canary's pods with no traffic, waits until they are ready,
//     then moves traffic (two revisions by design, issue 10, hazard 2); plain Helm
//     does the same as two `helm upgrade`s with `kubectl rollout status` between;
//   - a traffic move (10 -> 50): one revision each;
//   - the rollback (50 -> stable): `helm canary rollback` against `helm rollback`
//     to the stable revision.
//
// The plain release's chart is made of the very manifests helm-canary's release
// had at each stage (the same five objects, the same Helm validation and apply
// work; a value picks the stage), so each ratio is helm-canary's own cost: the
// plugin process, reading the release, rendering, the readiness wait's polling,
// drift repair and the status it prints. For reference it also times an upgrade
// of the un-canaried chart (two objects, not five).
//
// Each side has its own release: a plain upgrade of a canaried release drops what
// the post-renderer added, after which helm-canary rightly refuses to move it.
type helmFigures struct {
	Runs  int    `json:"runs"`
	Chart string `json:"chart"`
	// ByCPU: the targets are checked on CPU time (user+system of the commands and
	// their children), not wall time.
	ByCPU       bool             `json:"by_cpu"`
	Comparisons []helmComparison `json:"comparisons"`
	// Uncanaried is `helm upgrade --reuse-values` of the chart without canary, for
	// reference next to the traffic move.
	Uncanaried helmTimes `json:"uncanaried"`
}

// helmComparison is one kind of move: helm canary against plain Helm.
type helmComparison struct {
	Name   string    `json:"name"`
	Canary string    `json:"canary_commands"`
	Plain  string    `json:"plain_commands"`
	C      helmTimes `json:"canary"`
	P      helmTimes `json:"plain"`
	// Ratio and CPURatio are canary / plain, on wall and CPU medians.
	Ratio    float64 `json:"ratio"`
	CPURatio float64 `json:"cpu_ratio"`
	// Target is the most Ratio (or CPURatio) may be; 0 for a figure reported
	// without a target.
	Target  float64 `json:"target,omitempty"`
	Note    string  `json:"note,omitempty"`
	Skipped string  `json:"skipped,omitempty"`
}

// helmTimes are the runs of one side: wall and CPU seconds, and their medians.
type helmTimes struct {
	Walls     []float64 `json:"wall_seconds"`
	CPUs      []float64 `json:"cpu_seconds"`
	Median    float64   `json:"wall_seconds_median"`
	CPUMedian float64   `json:"cpu_seconds_median"`
}

func (t *helmTimes) add(wall, cpu time.Duration) {
	t.Walls, t.CPUs = append(t.Walls, wall.Seconds()), append(t.CPUs, cpu.Seconds())
	t.Median, t.CPUMedian = median(t.Walls), median(t.CPUs)
}

// The comparisons, in the order of a run.
const (
	firstMove = iota
	trafficMove
	rollbackMove
	rollbackInfo
)

func benchHelm(ctx context.Context, runs int, helmCanary string, target float64, byCPU bool, logf func(string, ...any)) (*helmFigures, error) {
	root, err := filepath.Abs(".")
	if err != nil {
		return nil, err
	}
	cluster, err := localcluster.Start(ctx, localcluster.Options{Build: "all"})
	if err != nil {
		return nil, err
	}
	defer cluster.Stop()
	// The chart names its objects after itself: one namespace per release.
	const ns, sameNS, plainNS, rel = "bench", "bench-same", "bench-plain", "pp"
	for _, n := range []string{ns, sameNS, plainNS} {
		if err := cluster.CreateNamespace(ctx, n); err != nil {
			return nil, err
		}
	}
	home, err := os.MkdirTemp("", "helm-canary-bench-helm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	// The plugin runs the binary under test.
	plugin := filepath.Join(home, "plugin")
	if err := os.MkdirAll(filepath.Join(plugin, "bin"), 0o755); err != nil {
		return nil, err
	}
	manifest, err := os.ReadFile(filepath.Join(root, "plugin.yaml"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(plugin, "plugin.yaml"), stripHooks(manifest), 0o644); err != nil {
		return nil, err
	}
	if err := copyFile(helmCanary, filepath.Join(plugin, "bin", "helm-canary")); err != nil {
		return nil, err
	}
	env := append(localcluster.ToolEnv(), testhelm.HomeEnv(home, cluster.Kubeconfig())...)
	helm := filepath.Join(cluster.BinDir(), "helm3")
	chart := filepath.Join(root, "examples", "productpage")
	run := func(name string, args ...string) (wall, cpu time.Duration, out string, err error) {
		cmd := exec.CommandContext(ctx, name, args...)
		var stdout, stderr strings.Builder
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, 0, "", fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
		}
		wall = time.Since(start)
		// wait4's rusage of helm counts the plugin process it waited for.
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		}
		return wall, cpu, stdout.String(), nil
	}
	runHelm := func(args ...string) error {
		_, _, _, err := run(helm, args...)
		return err
	}
	kubectl := lookKubectl()

	if err := runHelm("plugin", "install", plugin); err != nil {
		return nil, err
	}
	logf("helm: preparing the releases (helm canary's, its stages' manifests as a chart, the un-canaried chart)")
	same, err := sameObjectsChart(home, func(args ...string) (string, error) {
		_, _, out, err := run(helm, args...)
		return out, err
	}, rel, ns, chart)
	if err != nil {
		return nil, err
	}
	if err := runHelm("install", rel, same, "-n", sameNS, "--set-string", "state=stable", "--set", "tag=84"); err != nil {
		return nil, err
	}
	if err := runHelm("install", rel, chart, "-n", plainNS, "--set", "image.tag=83"); err != nil {
		return nil, err
	}

	f := &helmFigures{Runs: runs, Chart: "examples/productpage", ByCPU: byCPU, Comparisons: []helmComparison{
		firstMove: {Name: "first move from stable with a new version (warm-up: 2 revisions, waits for the canary's pods)",
			Canary: "helm canary stage 10 RELEASE --set image.tag=T",
			Plain:  "helm upgrade (canary pods, 0%) + kubectl rollout status + helm upgrade (10%)", Target: target},
		trafficMove: {Name: "traffic move 10 -> 50 (1 revision)",
			Canary: "helm canary stage 50 RELEASE", Plain: "helm upgrade --reuse-values", Target: target},
		rollbackMove: {Name: "rollback 50 -> stable (1 revision, the stable chart and values rendered again)",
			Canary: "helm canary rollback RELEASE", Plain: "helm upgrade --reuse-values (back to stable)", Target: target},
		rollbackInfo: {Name: "rollback 50 -> stable against helm rollback",
			Canary: "helm canary rollback RELEASE", Plain: "helm rollback RELEASE (to the previous revision, at stable)",
			Note: "helm rollback re-applies a stored manifest: no rendering, and no client-side OpenAPI validation, which every helm upgrade (and so helm canary) does"},
	}}
	if kubectl == "" {
		f.Comparisons[firstMove].Skipped = "kubectl not found (tried kubectl in PATH, /usr/bin/kubectl): plain Helm's side waits for the pods with kubectl rollout status"
	}
	timed := func(t *helmTimes, cmds ...[]string) error {
		var wall, cpu time.Duration
		for _, c := range cmds {
			w, u, _, err := run(c[0], c[1:]...)
			if err != nil {
				return err
			}
			wall, cpu = wall+w, cpu+u
		}
		t.add(wall, cpu)
		return nil
	}
	for i := 0; i < runs; i++ {
		tag := fmt.Sprint(85 + i%2)
		cmp := f.Comparisons
		// The first move from stable, then 10 -> 50, then back to stable: both
		// sides start each run at stable.
		if kubectl != "" {
			if err := timed(&cmp[firstMove].C, []string{helm, "canary", "stage", "10", rel, "-n", ns, "--set", "image.tag=" + tag}); err != nil {
				return nil, err
			}
			if err := timed(&cmp[firstMove].P,
				[]string{helm, "upgrade", rel, same, "-n", sameNS, "--reuse-values", "--set-string", "state=warm", "--set", "tag=" + tag},
				[]string{kubectl, "rollout", "status", "deployment/productpage", "deployment/productpage-canary", "-n", sameNS, "--timeout", "5m"},
				[]string{helm, "upgrade", rel, same, "-n", sameNS, "--reuse-values", "--set-string", "state=10"}); err != nil {
				return nil, err
			}
		} else {
			if err := runHelm("canary", "stage", "10", rel, "-n", ns, "--set", "image.tag="+tag); err != nil {
				return nil, err
			}
			if err := runHelm("upgrade", rel, same, "-n", sameNS, "--reuse-values", "--set-string", "state=10", "--set", "tag="+tag); err != nil {
				return nil, err
			}
		}
		if err := timed(&cmp[trafficMove].C, []string{helm, "canary", "stage", "50", rel, "-n", ns}); err != nil {
			return nil, err
		}
		if err := timed(&cmp[trafficMove].P, []string{helm, "upgrade", rel, same, "-n", sameNS, "--reuse-values", "--set-string", "state=50"}); err != nil {
			return nil, err
		}
		if err := timed(&f.Uncanaried, []string{helm, "upgrade", rel, chart, "-n", plainNS, "--reuse-values", "--set", "image.tag=" + tag}); err != nil {
			return nil, err
		}
		if err := timed(&cmp[rollbackMove].C, []string{helm, "canary", "rollback", rel, "-n", ns}); err != nil {
			return nil, err
		}
		cmp[rollbackInfo].C.add(time.Duration(cmp[rollbackMove].C.Walls[i]*1e9), time.Duration(cmp[rollbackMove].C.CPUs[i]*1e9))
		if err := timed(&cmp[rollbackMove].P, []string{helm, "upgrade", rel, same, "-n", sameNS, "--reuse-values", "--set-string", "state=stable"}); err != nil {
			return nil, err
		}
		// Back to 50, untimed, for helm rollback to the previous (stable) revision.
		if err := runHelm("upgrade", rel, same, "-n", sameNS, "--reuse-values", "--set-string", "state=50"); err != nil {
			return nil, err
		}
		if err := timed(&cmp[rollbackInfo].P, []string{helm, "rollback", rel, "-n", sameNS}); err != nil {
			return nil, err
		}
		var line []string
		for _, c := range cmp {
			if c.Skipped == "" {
				line = append(line, fmt.Sprintf("%s %.3fs vs %.3fs", strings.SplitN(c.Name, " (", 2)[0], c.C.Walls[i], c.P.Walls[i]))
			}
		}
		logf("helm run %d/%d: %s; un-canaried upgrade %.3fs", i+1, runs, strings.Join(line, ", "), f.Uncanaried.Walls[i])
	}
	for i := range f.Comparisons {
		c := &f.Comparisons[i]
		if c.Skipped == "" {
			c.Ratio, c.CPURatio = c.C.Median/c.P.Median, c.C.CPUMedian/c.P.CPUMedian
		}
	}
	return f, nil
}

// sameObjectsChart takes helm canary's release through the stages a run goes
// through (install at stable, stage 10 with a new version: the warm-up's revision
// and stage 10's, stage 50, rollback) and writes a chart whose one template is, for
// each stage, the manifest the release had there: .Values.state picks it
// (stable, warm, 10, 50), .Values.tag is the canary's image tag.
func sameObjectsChart(home string, helm func(...string) (string, error), rel, ns, chart string) (string, error) {
	steps := [][]string{
		{"canary", "stage", "stable", rel, chart, "--install", "-n", ns, "--set", "image.tag=83"},
		{"canary", "stage", "10", rel, "-n", ns, "--set", "image.tag=84"},
		{"canary", "stage", "50", rel, "-n", ns},
		{"canary", "rollback", rel, "-n", ns},
	}
	for _, s := range steps {
		if _, err := helm(s...); err != nil {
			return "", err
		}
	}
	// Stable is the rollback's revision: where each run starts and ends.
	states := []struct {
		name     string
		revision int
	}{{"stable", 5}, {"warm", 2}, {"10", 3}, {"50", 4}}
	var tmpl strings.Builder
	for i, st := range states {
		manifest, err := helm("get", "manifest", rel, "-n", ns, "--revision", fmt.Sprint(st.revision))
		if err != nil {
			return "", err
		}
		if strings.Contains(manifest, "{{") {
			return "", fmt.Errorf("revision %d's manifest has template delimiters: it cannot be made a template", st.revision)
		}
		templated := strings.ReplaceAll(manifest, "productpage-v1:84", "productpage-v1:{{ .Values.tag }}")
		if st.name != "stable" && templated == manifest {
			return "", fmt.Errorf("revision %d's manifest (%s) has no canary image to template", st.revision, st.name)
		}
		kw := "else if"
		if i == 0 {
			kw = "if"
		}
		fmt.Fprintf(&tmpl, "{{- %s eq .Values.state %q }}\n%s\n", kw, st.name, templated)
	}
	tmpl.WriteString("{{- end }}\n")
	dir := filepath.Join(home, "same-objects")
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		"Chart.yaml":             "apiVersion: v2\nname: same-objects\nversion: 0.1.0\n",
		"values.yaml":            "state: stable\ntag: \"84\"\n",
		"templates/objects.yaml": tmpl.String(),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// lookKubectl finds kubectl for plain Helm's readiness wait, or "".
func lookKubectl() string {
	for _, c := range []string{"kubectl", "/usr/bin/kubectl"} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// failed reports whether a comparison that ran is over its target.
func (f *helmFigures) failed() bool {
	if f == nil {
		return false
	}
	for _, c := range f.Comparisons {
		if c.Skipped == "" && c.Target > 0 && c.ratio(f.ByCPU) > c.Target {
			return true
		}
	}
	return false
}

func (c helmComparison) ratio(byCPU bool) float64 {
	if byCPU {
		return c.CPURatio
	}
	return c.Ratio
}

func (f *helmFigures) text() string {
	var b strings.Builder
	by := "wall"
	if f.ByCPU {
		by = "CPU"
	}
	fmt.Fprintf(&b, "\nhelm 3 on a local kube-apiserver (pods Ready through simulated nodes), %s, %d interleaved runs (a new image tag each);\n", f.Chart, f.Runs)
	fmt.Fprintf(&b, "plain Helm's release is of the same objects (helm canary's own manifests at each stage); medians, targets on %s time:\n", by)
	for _, c := range f.Comparisons {
		fmt.Fprintf(&b, "  %s\n", c.Name)
		if c.Skipped != "" {
			fmt.Fprintf(&b, "    SKIPPED: %s\n", c.Skipped)
			continue
		}
		fmt.Fprintf(&b, "    %-78s wall %.3f s  CPU %.3f s\n", c.Canary, c.C.Median, c.C.CPUMedian)
		fmt.Fprintf(&b, "    %-78s wall %.3f s  CPU %.3f s\n", c.Plain, c.P.Median, c.P.CPUMedian)
		if c.Target == 0 {
			fmt.Fprintf(&b, "    helm canary / plain Helm: wall %.2f x, CPU %.2f x  INFO: %s\n", c.Ratio, c.CPURatio, c.Note)
			continue
		}
		result := "PASS"
		if c.ratio(f.ByCPU) > c.Target {
			result = "FAIL"
		}
		fmt.Fprintf(&b, "    helm canary / plain Helm: wall %.2f x, CPU %.2f x  (target <= %.1f x, %s)  %s\n", c.Ratio, c.CPURatio, c.Target, by, result)
	}
	fmt.Fprintf(&b, "  for reference, helm upgrade --reuse-values of the chart without canary (2 objects, not 5): wall %.3f s, CPU %.3f s\n", f.Uncanaried.Median, f.Uncanaried.CPUMedian)
	return b.String()
}

// stripHooks drops the install hooks: the benchmark copies a ready binary.
func stripHooks(manifest []byte) []byte {
	var out []string
	skip := false
	for _, line := range strings.Split(string(manifest), "\n") {
		if strings.HasPrefix(line, "platformHooks:") || strings.HasPrefix(line, "hooks:") {
			skip = true
			continue
		}
		if skip && (strings.HasPrefix(line, " ") || line == "") {
			continue
		}
		skip = false
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n"))
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}
