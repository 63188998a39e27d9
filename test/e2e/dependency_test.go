package e2e

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// test/charts/withcommon is shaped like a bitnami chart: its templates call a
// library dependency, common, that Helm does not store with the release. Its
// release "web" has the Deployment, Service and routing objects web-withcommon.
const (
	commonRelease = "web"
	commonName    = "web-withcommon"
)

func (h *helmEnv) commonChart() string {
	return filepath.Join(h.checkout, "test", "charts", "withcommon")
}

// wantCommonStable checks release web at stable on image tag: production runs it,
// the canary has no pods, all traffic is on production, the objects the chart's
// templates render through the library are all there, and the values say stable.
func wantCommonStable(t *testing.T, h *helmEnv, ns, tag, how string) {
	t.Helper()
	prod, canary := getDeployment(t, ns, commonName), getDeployment(t, ns, commonName+"-canary")
	wantImages(t, commonName+" after "+how, prod, productpageImage+":"+tag)
	wantReplicas(t, commonName+" after "+how, prod, 2)
	wantLabel(t, commonName+" pod template after "+how, prod.PodLabels, "app.kubernetes.io/managed-by", "Helm")
	wantReplicas(t, commonName+"-canary after "+how, canary, 0)
	got := getRouteWeights(t, ns, commonName)
	// A fresh install routes by host until production's pods carry the track label
	// (hazard 2): all traffic on production too.
	if !maps.Equal(got, map[string]int64{"production": 100, "canary": 0}) && !maps.Equal(got, map[string]int64{"": 100}) {
		t.Errorf("after %s: VirtualService %s routes %v, want all traffic on production", how, commonName, got)
	}
	if _, err := clients(t).kube.CoreV1().ConfigMaps(ns).Get(t.Context(), commonName+"-settings", metav1.GetOptions{}); err != nil {
		t.Errorf("after %s: ConfigMap %s-settings: %v", how, commonName, err)
	}
	values := h.releaseValues(t, commonRelease, ns)
	if got := valueAt(values, "image.tag"); got != tag {
		t.Errorf("after %s: helm get values: image.tag %q, want %s; values %v", how, got, tag, values)
	}
	if got := valueAt(values, "canary.stage"); got != "stable" {
		t.Errorf("after %s: helm get values: canary.stage %q, want stable; values %v", how, got, values)
	}
	if last := h.lastRevision(t, commonRelease, ns); last.Status != "deployed" {
		t.Errorf("after %s: last revision %+v, want deployed", how, last)
	}
}

// rollbackWithoutChart runs `helm canary rollback web` (or `stage stable web`), no
// CHART, and checks it made exactly one revision.
func rollbackWithoutChart(t *testing.T, h *helmEnv, ns string, args ...string) {
	t.Helper()
	before := h.lastRevision(t, commonRelease, ns)
	out := h.mustRun(t, append(args, commonRelease, "-n", ns)...)
	t.Logf("%s:\n%s", strings.Join(args, " "), out)
	if after := h.lastRevision(t, commonRelease, ns); after.Revision != before.Revision+1 {
		t.Errorf("%s: last revision %d, want %d (one revision)", strings.Join(args, " "), after.Revision, before.Revision+1)
	}
}

// TestRollbackWithoutChartCommonDependency: a chart with a bitnami-style common
// library dependency rolls back without naming the chart, from 10, 100, swap and
// after final, with `rollback` and with `stage stable`.
func TestRollbackWithoutChartCommonDependency(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := h.commonChart()
		stage := func(args ...string) { h.stage(t, ns, args...) }
		stage("stable", commonRelease, chart, "--install", "--set", "image.tag=83")
		wantCommonStable(t, h, ns, "83", "install")

		stage("10", commonRelease, chart, "--set", "image.tag=84")
		wantImages(t, commonName+"-canary at 10", getDeployment(t, ns, commonName+"-canary"), productpageImage+":84")
		rollbackWithoutChart(t, h, ns, "canary", "rollback")
		wantCommonStable(t, h, ns, "83", "rollback from 10")

		stage("10", commonRelease, chart, "--set", "image.tag=84")
		stage("100", commonRelease, chart)
		wantWeights(t, ns, commonName, map[string]int64{"production": 0, "canary": 100})
		rollbackWithoutChart(t, h, ns, "canary", "stage", "stable")
		wantCommonStable(t, h, ns, "83", "stage stable from 100")

		stage("10", commonRelease, chart, "--set", "image.tag=84")
		stage("100", commonRelease, chart)
		stage("swap", commonRelease, chart)
		wantImages(t, commonName+" at swap", getDeployment(t, ns, commonName), productpageImage+":84")
		rollbackWithoutChart(t, h, ns, "canary", "rollback")
		wantCommonStable(t, h, ns, "83", "rollback from swap")

		// After final, 84 is the stable version: the next canary's rollback returns to it.
		stage("10", commonRelease, chart, "--set", "image.tag=84")
		stage("100", commonRelease, chart)
		stage("swap", commonRelease, chart)
		stage("final", commonRelease, chart, "--drain-time", "0s")
		stage("10", commonRelease, chart, "--set", "image.tag=85")
		rollbackWithoutChart(t, h, ns, "canary", "rollback", "--no-hooks", "--timeout", "1m")
		wantCommonStable(t, h, ns, "84", "rollback after final")

		// The release goes on from there with the chart named again.
		stage("10", commonRelease, chart, "--set", "image.tag=86")
		wantImages(t, commonName+" at 10 after the rollbacks", getDeployment(t, ns, commonName), productpageImage+":84")
		wantImages(t, commonName+"-canary at 10 after the rollbacks", getDeployment(t, ns, commonName+"-canary"), productpageImage+":86")
	})
}

// oneStage runs `helm canary stage ARGS -n ns` with no CHART and checks it made
// want revisions, with the objects of both dependencies (common's helpers render
// web-withcommon-settings, the aliased exporter subchart web-metrics) still live
// and the stage in `helm get values`.
func oneStage(t *testing.T, h *helmEnv, ns string, want int, args ...string) {
	t.Helper()
	before := h.lastRevision(t, commonRelease, ns)
	out := h.stage(t, ns, args...)
	t.Logf("stage %s:\n%s", strings.Join(args, " "), out)
	if after := h.lastRevision(t, commonRelease, ns); after.Revision != before.Revision+want || after.Status != "deployed" {
		t.Errorf("stage %s: last revision %+v, want %d deployed", strings.Join(args, " "), after, before.Revision+want)
	}
	for _, name := range []string{commonName + "-settings", commonRelease + "-metrics"} {
		if _, err := clients(t).kube.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{}); err != nil {
			t.Errorf("after stage %s: ConfigMap %s (rendered through a dependency): %v", args[0], name, err)
		}
	}
	if got := valueAt(h.releaseValues(t, commonRelease, ns), "canary.stage"); got != args[0] {
		t.Errorf("after stage %s: helm get values: canary.stage %q", args[0], got)
	}
}

// TestStagesWithoutChartCommonDependency: once a stage has named the chart, every
// traffic move of a chart with a bitnami-style common library and an aliased
// application subchart runs without CHART, 10 → 90 → 100 → swap → final, and after
// a plain `helm rollback` too; so does a new version given as values only.
func TestStagesWithoutChartCommonDependency(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := h.commonChart()
		h.stage(t, ns, "stable", commonRelease, chart, "--install", "--set", "image.tag=83")
		h.stage(t, ns, "10", commonRelease, chart, "--set", "image.tag=84")
		wantWeights(t, ns, commonName, map[string]int64{"production": 90, "canary": 10})

		oneStage(t, h, ns, 1, "90", commonRelease)
		wantWeights(t, ns, commonName, map[string]int64{"production": 10, "canary": 90})
		oneStage(t, h, ns, 1, "100", commonRelease)
		wantWeights(t, ns, commonName, map[string]int64{"production": 0, "canary": 100})
		wantImages(t, commonName+" at 100", getDeployment(t, ns, commonName), productpageImage+":83")

		// Plain helm's rollback copies the stored chart, the kept dependencies with it.
		h.mustRun(t, "rollback", commonRelease, "-n", ns)
		wantWeights(t, ns, commonName, map[string]int64{"production": 10, "canary": 90})
		oneStage(t, h, ns, 1, "100", commonRelease)

		oneStage(t, h, ns, 1, "swap", commonRelease)
		wantImages(t, commonName+" at swap", getDeployment(t, ns, commonName), productpageImage+":84")
		oneStage(t, h, ns, 2, "final", commonRelease, "--drain-time", "0s")
		wantImages(t, commonName+" at final", getDeployment(t, ns, commonName), productpageImage+":84")
		wantReplicas(t, commonName+"-canary at final", getDeployment(t, ns, commonName+"-canary"), 0)
		wantWeights(t, ns, commonName, map[string]int64{"production": 100, "canary": 0})

		// A new version as values alone, and its rollback: no CHART either. From
		// final, 10 is two revisions: the canary's pods start with no traffic, then
		// traffic moves once they are Ready.
		oneStage(t, h, ns, 2, "10", commonRelease, "--set", "image.tag=85")
		wantImages(t, commonName+"-canary at 10", getDeployment(t, ns, commonName+"-canary"), productpageImage+":85")
		rollbackWithoutChart(t, h, ns, "canary", "rollback")
		wantCommonStable(t, h, ns, "84", "rollback of a version given as values")
	})
}

// TestRollbackWithoutKeptDependencies: a release whose last stable revision was
// made without helm-canary naming the chart (plain helm with the post-renderer, or
// an older helm-canary) has no dependencies kept with it. Its rollback re-applies
// that revision's stored manifest; a stage that renders asks for CHART once, and
// says why.
func TestRollbackWithoutKeptDependencies(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := h.commonChart()
		h.mustRun(t, append([]string{"upgrade", "--install", commonRelease, chart, "-n", ns, "--set", "image.tag=83"},
			h.postRenderer("--stage=stable", "--release="+commonRelease, "--namespace="+ns)...)...)
		h.stage(t, ns, "10", commonRelease, chart, "--set", "image.tag=84")
		before := h.lastRevision(t, commonRelease, ns)
		stdout, stderr, err := h.run(t, "canary", "rollback", commonRelease, "-n", ns)
		if err != nil {
			t.Fatal(err)
		}
		out := stdout + stderr
		t.Logf("rollback:\n%s", out)
		if !strings.Contains(out, "revision 1's manifest re-applied") {
			t.Errorf("the rollback did not re-apply revision 1's stored manifest:\n%s", out)
		}
		if after := h.lastRevision(t, commonRelease, ns); after.Revision != before.Revision+1 || after.Status != "deployed" {
			t.Errorf("rollback: last revision %+v, want %d deployed", after, before.Revision+1)
		}
		wantImages(t, commonName+" after the rollback", getDeployment(t, ns, commonName), productpageImage+":83")
		wantReplicas(t, commonName+"-canary after the rollback", getDeployment(t, ns, commonName+"-canary"), 0)
		// Revision 1 was an install: it routes by host (hazard 2), all on production.
		wantWeights(t, ns, commonName, map[string]int64{"": 100})

		before = h.lastRevision(t, commonRelease, ns)
		_, stderr, err = h.run(t, "canary", "stage", "10", commonRelease, "-n", ns, "--set", "image.tag=85")
		if err == nil || !strings.Contains(stderr, "were not kept with it") || !strings.Contains(stderr, "name the chart") {
			t.Errorf("stage 10 without CHART, no dependencies kept: %v\n%s", err, stderr)
		}
		if after := h.lastRevision(t, commonRelease, ns); after.Revision != before.Revision {
			t.Errorf("the refused stage 10 made revision %d", after.Revision)
		}
		h.stage(t, ns, "10", commonRelease, chart, "--set", "image.tag=85")
		oneStage(t, h, ns, 1, "90", commonRelease)
	})
}
