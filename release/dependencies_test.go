package release

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// Stages without CHART on a release whose chart has dependencies Helm does not
// store (bitnami's common library, an aliased application subchart), on Helm's
// in-memory storage made to keep what its Secret driver keeps, and Helm's upgrade
// against its fake kube client.

// jsonMemory is Helm's memory driver keeping each revision as the Secret and
// ConfigMap drivers do, as its JSON: a chart's loaded subcharts (an unexported
// field) are lost, as they are in a cluster.
type jsonMemory struct{ driver.Driver }

func asStored(rls *helmrelease.Release) (*helmrelease.Release, error) {
	data, err := json.Marshal(rls)
	if err != nil {
		return nil, err
	}
	var out helmrelease.Release
	return &out, json.Unmarshal(data, &out)
}

func (d jsonMemory) Create(key string, rls *helmrelease.Release) error {
	stored, err := asStored(rls)
	if err != nil {
		return err
	}
	return d.Driver.Create(key, stored)
}

func (d jsonMemory) Update(key string, rls *helmrelease.Release) error {
	stored, err := asStored(rls)
	if err != nil {
		return err
	}
	return d.Driver.Update(key, stored)
}

func fakeClient() *Client {
	cfg := &action.Configuration{
		Releases:     storage.Init(jsonMemory{driver.NewMemory()}),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	return &Client{cfg: cfg, Namespace: "default", Log: io.Discard}
}

// loadWithCommon loads test/charts/withcommon afresh (Helm changes a chart as it
// processes it): common, and exporter under the alias metrics.
func loadWithCommon(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load("../test/charts/withcommon")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Dependencies()) != 2 {
		t.Fatalf("withcommon loaded with %d dependencies, want common and exporter", len(ch.Dependencies()))
	}
	return ch
}

// stageFake plans a stage command (named is the chart on its command line, or
// nil) and runs its upgrades as the apply loop does, or dry-runs them.
func stageFake(t *testing.T, c *Client, stage string, named *chart.Chart, dryRun bool, set ...string) []*helmrelease.Release {
	t.Helper()
	o := stageOpts(stage, set...)
	o.DryRun = dryRun
	plan, err := planStage(c.cfg.Releases, planInput{Options: o, Overrides: overrides(t, set...), Chart: named})
	if err != nil {
		t.Fatalf("stage %s: %v", stage, err)
	}
	if plan.RestoreManifest {
		t.Fatalf("stage %s: planned as a restore of revision %d's manifest, want a render of the chart", stage, plan.Base.Version)
	}
	var out []*helmrelease.Release
	production := plan.Production
	for _, step := range plan.Steps {
		pr, err := plan.Mode.postRenderer(step.State, production, c)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := c.upgrade(context.Background(), o, nil, plan.Chart, step.Values, pr)
		if err != nil {
			t.Fatalf("stage %s: %v", stage, err)
		}
		out = append(out, rel)
		production = []byte(rel.Manifest)
	}
	return out
}

func hooksOf(rel *helmrelease.Release) string {
	var b strings.Builder
	for _, h := range rel.Hooks {
		fmt.Fprintf(&b, "%s %v\n%s\n", h.Path, h.Events, h.Manifest)
	}
	return b.String()
}

// The walk 10 → 90 → 100 → swap → final → stable without CHART renders, at every
// step, byte for byte what naming the chart again renders: manifest and hooks,
// the subcharts' objects included; the stored values are the user's.
func TestStagesWithoutChartKeepDependencies(t *testing.T) {
	c := fakeClient()
	installFake(t, c, true, map[string]any{"image": map[string]any{"tag": "83"}, "slowHook": map[string]any{"enabled": true}})
	stageFake(t, c, "10", loadWithCommon(t), false, "image.tag=84")
	for _, stage := range []string{"90", "100", "swap", "final", "stable"} {
		named := stageFake(t, c, stage, loadWithCommon(t), true)
		got := stageFake(t, c, stage, nil, false)
		if len(got) != len(named) {
			t.Fatalf("stage %s: %d upgrades without CHART, %d with it", stage, len(got), len(named))
		}
		last := got[len(got)-1]
		for _, want := range []string{"name: pp-withcommon-settings", "name: pp-metrics", "name: pp-withcommon-canary", "kind: VirtualService"} {
			if !strings.Contains(last.Manifest, want) {
				t.Errorf("stage %s without CHART: manifest has no %q:\n%s", stage, want, last.Manifest)
			}
		}
		if !strings.Contains(hooksOf(last), "pp-withcommon-migrate") {
			t.Errorf("stage %s without CHART: the chart's pre-upgrade hook is gone: %q", stage, hooksOf(last))
		}
		// The dry run with CHART compares with the revision before this one; the
		// steps of final after the first have no dry-run twin, so compare the first.
		if got[0].Manifest != named[0].Manifest {
			t.Errorf("stage %s: the manifest without CHART differs from the chart named again:\n%s", stage, diffManifests(named[0].Manifest, got[0].Manifest, stage))
		}
		if hooksOf(got[0]) != hooksOf(named[0]) {
			t.Errorf("stage %s: hooks without CHART differ from the chart named again:\n%s\n---\n%s", stage, hooksOf(got[0]), hooksOf(named[0]))
		}
		stored, err := c.cfg.Releases.Last("pp")
		if err != nil {
			t.Fatal(err)
		}
		if len(stored.Chart.Dependencies()) != 0 {
			t.Fatal("the test's storage kept the subcharts: it does not store as Helm does")
		}
		if stored.Config[ValuesKey].(map[string]any)["stage"] != stage || len(stored.Config) != 3 {
			t.Errorf("stage %s: helm get values would show %v, want the user's values and the canary block", stage, stored.Config)
		}
		for _, f := range stored.Chart.Files {
			if strings.HasPrefix(f.Name, "charts/") && f.Name != dependenciesFile {
				t.Errorf("stored chart file %s", f.Name)
			}
		}
	}
	// After final and the rollback to it, production runs 84.
	last, _ := c.cfg.Releases.Last("pp")
	if !strings.Contains(last.Manifest, "istio/examples-bookinfo-productpage-v1:84") || strings.Contains(last.Manifest, ":83") {
		t.Errorf("stable after final: manifest does not run 84 alone:\n%s", last.Manifest)
	}
}

// The dependencies are kept as the chart was loaded, before Helm's processing: a
// subchart disabled when the chart was named can be enabled without CHART, and an
// alias still names its objects.
func TestKeptDependenciesAsLoaded(t *testing.T) {
	c := fakeClient()
	installFake(t, c, true, map[string]any{"metrics": map[string]any{"enabled": false}})
	o := stageOpts("10", "image.tag=84")
	plan, err := planStage(c.cfg.Releases, planInput{Options: o, Overrides: map[string]any{"image": map[string]any{"tag": "84"}, "metrics": map[string]any{"enabled": true}}})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := plan.Mode.postRenderer(plan.Steps[0].State, plan.Production, c)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := c.upgrade(context.Background(), o, nil, plan.Chart, plan.Steps[0].Values, pr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rel.Manifest, "name: pp-metrics\n") {
		t.Errorf("metrics enabled without CHART: no ConfigMap pp-metrics:\n%s", rel.Manifest)
	}
	rel = stageFake(t, c, "stable", nil, false)[0]
	if strings.Contains(rel.Manifest, "pp-metrics") {
		t.Errorf("the rollback to the revision without metrics still has them:\n%s", rel.Manifest)
	}
}

// installFake installs release pp at stable through the post-renderer, with the
// chart's dependencies kept (as helm canary stage --install does) or not (as
// plain helm does).
func installFake(t *testing.T, c *Client, keepDependencies bool, vals map[string]any) {
	t.Helper()
	in := action.NewInstall(c.cfg)
	in.ReleaseName, in.Namespace = "pp", "default"
	ch := loadWithCommon(t)
	if keepDependencies {
		var err error
		if ch, err = withDependenciesKept(ch); err != nil {
			t.Fatal(err)
		}
	}
	state := canaryState{}
	state.Stage = "stable"
	pr, err := postRenderMode{}.postRenderer(state, nil, c)
	if err != nil {
		t.Fatal(err)
	}
	in.PostRenderer = pr
	vals[ValuesKey] = map[string]any{"stage": "stable"}
	if _, err := in.Run(ch, vals); err != nil {
		t.Fatal(err)
	}
}

// A release upgraded without the dependencies kept (by plain helm, or before
// helm-canary kept them) needs CHART once for a stage that renders, names why,
// and keeps them from then on.
func TestDependenciesNotKept(t *testing.T) {
	c := fakeClient()
	installFake(t, c, false, map[string]any{})
	_, err := planStage(c.cfg.Releases, planInput{Options: stageOpts("10", "image.tag=84"), Overrides: overrides(t, "image.tag=84")})
	if err == nil || !strings.Contains(err.Error(), "were not kept with it") || !strings.Contains(err.Error(), "name the chart (helm canary stage 10 pp CHART") || !strings.Contains(err.Error(), "common, metrics") {
		t.Fatalf("stage 10 without CHART on a release without kept dependencies: %v", err)
	}
	stageFake(t, c, "10", loadWithCommon(t), false, "image.tag=84")
	stageFake(t, c, "90", nil, false)
	// A chart named again unchanged is no new version: swap takes it.
	stageFake(t, c, "100", nil, false)
	stageFake(t, c, "swap", loadWithCommon(t), false)
}

// The file round-trips: restoring gives back the chart as loaded, and a chart
// without dependencies carries none.
func TestDependenciesFile(t *testing.T) {
	ch := loadWithCommon(t)
	kept, err := withDependenciesKept(ch)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Files) == len(kept.Files) {
		t.Fatal("no file added")
	}
	stored, err := asStored(&helmrelease.Release{Chart: kept})
	if err != nil {
		t.Fatal(err)
	}
	back, err := withDependenciesRestored(stored.Chart)
	if err != nil {
		t.Fatal(err)
	}
	if !sameChart(back, ch) || len(back.Dependencies()) != 2 || back.Dependencies()[0].Parent() != back {
		t.Errorf("restored chart differs from the loaded one (dependencies %d)", len(back.Dependencies()))
	}
	for i, d := range back.Dependencies() {
		if !sameChart(d, ch.Dependencies()[i]) {
			t.Errorf("dependency %s differs", d.Name())
		}
	}
	if fmt.Sprint(back.Metadata.Dependencies[1]) != fmt.Sprint(ch.Metadata.Dependencies[1]) {
		t.Errorf("dependency list %v, want %v as loaded", back.Metadata.Dependencies[1], ch.Metadata.Dependencies[1])
	}
	plain := plainChart()
	if out, _ := withDependenciesKept(plain); out != plain {
		t.Error("a chart without dependencies was given a file")
	}
	if out, _ := withDependenciesRestored(plain); out != plain {
		t.Error("a chart without the file was changed")
	}
	// Too large to keep: dependencies past maxDependenciesFile, or a chart that
	// with them would pass maxStoredChart (incompressible data, as CRDs are not).
	noise := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.NewChaCha8([32]byte{}).Read(b)
		return b
	}
	big := loadWithCommon(t)
	big.Dependencies()[0].Files = append(big.Dependencies()[0].Files, &chart.File{Name: "crds/big.yaml", Data: noise(maxDependenciesFile + 1)})
	if out, _ := withDependenciesKept(big); out != big {
		t.Error("dependencies over maxDependenciesFile were kept")
	}
	bigParent := loadWithCommon(t)
	bigParent.Files = append(bigParent.Files, &chart.File{Name: "files/big.bin", Data: noise(maxStoredChart)})
	if out, _ := withDependenciesKept(bigParent); out != bigParent {
		t.Error("dependencies were kept on a chart that would pass maxStoredChart")
	}
	broken := plainChart()
	broken.Files = []*chart.File{{Name: dependenciesFile, Data: []byte("not gzip")}}
	if _, err := withDependenciesRestored(broken); err == nil || !strings.Contains(err.Error(), "kept with the release") {
		t.Errorf("an unreadable file: %v", err)
	}
}

// Client.Stage's own refusals, before any plan (a release to install without
// --install, a pending release's rollback that would not recover it, an install
// at swap or final), and the plan's refusals through it: each an error naming the
// fix, and no revision.
func TestStageRefusalsMakeNoRevision(t *testing.T) {
	c := fakeClient()
	c.Settings = cli.New()
	installFake(t, c, true, map[string]any{"image": map[string]any{"tag": "83"}})
	stageFake(t, c, "10", nil, false, "image.tag=84")
	pending, err := c.cfg.Releases.Last("pp")
	if err != nil {
		t.Fatal(err)
	}
	chartDir := "../test/charts/withcommon"
	for _, tt := range []struct {
		name    string
		o       StageOptions
		pending bool
		want    string
	}{
		{"no such release", StageOptions{Stage: "10", Release: "nosuch"}, false, "pass --install (helm canary stage 10 nosuch CHART --install)"},
		{"--install without CHART", StageOptions{Stage: "10", Release: "nosuch", Install: true}, false, "name a chart and pass --install"},
		{"install at swap", StageOptions{Stage: "swap", Release: "nosuch", Chart: chartDir, Install: true}, false, "nothing to promote yet"},
		{"install at final", StageOptions{Stage: "final", Release: "nosuch", Chart: chartDir, Install: true}, false, "nothing to promote yet"},
		{"swap before 100", StageOptions{Stage: "swap", Release: "pp"}, false, "run stage 100 first"},
		{"final from 10, chart named", StageOptions{Stage: "final", Release: "pp", Chart: chartDir}, false, "run stage swap first"},
		{"pending: stage 90", StageOptions{Stage: "90", Release: "pp"}, true, "helm canary rollback pp -n default"},
		{"pending: rollback of one workload", StageOptions{Stage: "stable", Release: "pp", Workloads: []string{"pp-withcommon"}}, true, "helm canary rollback pp -n default"},
		{"pending: rollback --dry-run", StageOptions{Stage: "stable", Release: "pp", DryRun: true}, true, "helm canary rollback pp -n default"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pending != (pending.Info.Status == helmrelease.StatusPendingUpgrade) {
				if tt.pending {
					pending.Info.Status = helmrelease.StatusPendingUpgrade
				} else {
					pending.Info.Status = helmrelease.StatusDeployed
				}
				if err := c.cfg.Releases.Update(pending); err != nil {
					t.Fatal(err)
				}
			}
			before := mustHistory(t, c.cfg.Releases)
			_, err := c.Stage(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			t.Logf("%v", err)
			after := mustHistory(t, c.cfg.Releases)
			if len(after) != len(before) {
				t.Errorf("a refused command made a revision: %d revisions, %d before", len(after), len(before))
			}
			for i := range after {
				if after[i].Info.Status != before[i].Info.Status {
					t.Errorf("revision %d went from %s to %s", after[i].Version, before[i].Info.Status, after[i].Info.Status)
				}
			}
		})
	}
}

// withDependenciesKept takes JSON within len+len/1024+64 bytes of the bound as
// fitting without compressing it: gzip never makes data longer than that, even
// incompressible data.
func TestGzipGrowsLessThanTheBoundAssumes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 100, 64 << 10, 200 << 10, maxStoredChart} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		gz, err := gzipped(data)
		if err != nil {
			t.Fatal(err)
		}
		if len(gz) > len(data)+len(data)/1024+64 {
			t.Errorf("%d bytes of noise gzip to %d bytes, more than the bound assumes", n, len(gz))
		}
	}
}
