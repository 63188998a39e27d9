package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/helm-canary/helm-canary/internal/localcluster"
)

// helmFigures compares `helm canary stage 10` with a plain `helm upgrade
// --reuse-values` on a local API server, interleaved, each run changing the image
// tag so that every command does a real upgrade. The target compares like with
// like: a release of a chart made of the very manifest stage 10 produces (same
// five objects, same Helm validation and apply work), so the ratio is helm-canary's
// own cost: the plugin process, reading the release, rendering, the status read.
// For reference it also times the un-canaried chart (two objects): that gap is the
// price of the canary objects themselves, mostly Helm's client-side OpenAPI
// validation of the two Istio objects.
//
// Each command has its own release: a plain upgrade of a canaried release drops
// what the post-renderer added, after which helm-canary rightly refuses stage 10
// until the release is re-adopted at stable.
type helmFigures struct {
	Runs          int       `json:"runs"`
	StageWalls    []float64 `json:"stage_wall_seconds"`
	SameWalls     []float64 `json:"same_objects_wall_seconds"`
	PlainWalls    []float64 `json:"uncanaried_wall_seconds"`
	StageMedian   float64   `json:"stage_wall_seconds_median"`
	SameMedian    float64   `json:"same_objects_wall_seconds_median"`
	PlainMedian   float64   `json:"uncanaried_wall_seconds_median"`
	Ratio         float64   `json:"ratio"`
	RatioUncanary float64   `json:"ratio_to_uncanaried"`
	Target        float64   `json:"target"`
}

func benchHelm(ctx context.Context, runs int, helmCanary string, target float64, logf func(string, ...any)) (*helmFigures, error) {
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
	env := append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"))
	helm := filepath.Join(cluster.BinDir(), "helm3")
	chart := filepath.Join(root, "examples", "productpage")
	run := func(args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, helm, args...)
		cmd.Env, cmd.Stdout = env, io.Discard
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return time.Since(start), nil
	}
	if _, err := run("plugin", "install", plugin); err != nil {
		return nil, err
	}
	if _, err := run("canary", "stage", "stable", rel, chart, "--install", "-n", ns, "--set", "image.tag=83"); err != nil {
		return nil, err
	}
	if _, err := run("install", rel, chart, "-n", plainNS, "--set", "image.tag=83"); err != nil {
		return nil, err
	}
	same, err := sameObjectsChart(ctx, helm, env, home, rel, ns)
	if err != nil {
		return nil, err
	}
	if _, err := run("install", rel, same, "-n", sameNS, "--set", "tag=84"); err != nil {
		return nil, err
	}
	f := &helmFigures{Runs: runs, Target: target}
	for i := 0; i < runs; i++ {
		tag := fmt.Sprint(84 + i%2)
		d, err := run("canary", "stage", "10", rel, "-n", ns, "--set", "image.tag="+tag)
		if err != nil {
			return nil, err
		}
		f.StageWalls = append(f.StageWalls, d.Seconds())
		m, err := run("upgrade", rel, same, "-n", sameNS, "--reuse-values", "--set", "tag="+tag)
		if err != nil {
			return nil, err
		}
		f.SameWalls = append(f.SameWalls, m.Seconds())
		p, err := run("upgrade", rel, chart, "-n", plainNS, "--reuse-values", "--set", "image.tag="+tag)
		if err != nil {
			return nil, err
		}
		f.PlainWalls = append(f.PlainWalls, p.Seconds())
		logf("helm run %d/%d  helm canary stage 10 %.3fs  helm upgrade --reuse-values: same objects %.3fs, un-canaried chart %.3fs",
			i+1, runs, d.Seconds(), m.Seconds(), p.Seconds())
	}
	f.StageMedian, f.SameMedian, f.PlainMedian = median(f.StageWalls), median(f.SameWalls), median(f.PlainWalls)
	f.Ratio, f.RatioUncanary = f.StageMedian/f.SameMedian, f.StageMedian/f.PlainMedian
	return f, nil
}

// sameObjectsChart writes a chart whose one template is the manifest of the
// release at stage 10, with the canary's image tag as its only value.
func sameObjectsChart(ctx context.Context, helm string, env []string, home, rel, ns string) (string, error) {
	cmd := exec.CommandContext(ctx, helm, "canary", "stage", "10", rel, "-n", ns, "--set", "image.tag=84")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("stage 10: %w\n%s", err, out)
	}
	cmd = exec.CommandContext(ctx, helm, "get", "manifest", rel, "-n", ns)
	cmd.Env = env
	manifest, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("helm get manifest: %w", err)
	}
	templated := strings.ReplaceAll(string(manifest), "productpage-v1:84", "productpage-v1:{{ .Values.tag }}")
	if templated == string(manifest) {
		return "", fmt.Errorf("the stage 10 manifest has no canary image to template")
	}
	dir := filepath.Join(home, "same-objects")
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		"Chart.yaml":             "apiVersion: v2\nname: same-objects\nversion: 0.1.0\n",
		"values.yaml":            "tag: \"84\"\n",
		"templates/objects.yaml": templated,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func (f *helmFigures) failed() bool { return f != nil && f.Ratio > f.Target }

func (f *helmFigures) text() string {
	result := "PASS"
	if f.failed() {
		result = "FAIL"
	}
	return fmt.Sprintf(`
helm 3 on a local kube-apiserver, examples/productpage, %d interleaved runs, each changing the image tag:
  helm canary stage 10                                         median %.3f s
  helm upgrade --reuse-values, a release of the same objects   median %.3f s
  helm upgrade --reuse-values, the chart without canary        median %.3f s  (2 objects instead of 5)
  helm-canary's own cost: ratio %.2f x  (target <= %.1f x)  %s
  including the canary objects: ratio %.2f x  (INFO)
`, f.Runs, f.StageMedian, f.SameMedian, f.PlainMedian, f.Ratio, f.Target, result, f.RatioUncanary)
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
