package release

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// The stage plan on Helm's in-memory release storage: every row of the stage
// table and every refusal, without a cluster.

func plainChart() *chart.Chart {
	return &chart.Chart{
		Metadata: &chart.Metadata{Name: "productpage", APIVersion: "v2", Version: "0.1.0"},
		Values:   map[string]any{"image": map[string]any{"repository": "pp", "tag": "83"}, "replicaCount": 2},
	}
}

// history stores revisions 1..n of release pp: each entry is the stage of its
// canary block and the image tag of its values; the newest is deployed.
type rev struct {
	stage    string
	draining bool
	tag      string
	status   helmrelease.Status
}

func memoryStore(t *testing.T, ch *chart.Chart, revs ...rev) *storage.Storage {
	t.Helper()
	store := storage.Init(driver.NewMemory())
	for i, r := range revs {
		status := r.status
		if status == "" {
			status = helmrelease.StatusSuperseded
			if i == len(revs)-1 {
				status = helmrelease.StatusDeployed
			}
		}
		cfg := map[string]any{"image": map[string]any{"tag": r.tag}}
		if r.stage != "" {
			block := map[string]any{"stage": r.stage}
			if r.draining {
				block["draining"] = true
			}
			cfg[ValuesKey] = block
		}
		rel := &helmrelease.Release{Name: "pp", Namespace: "default", Version: i + 1, Chart: ch, Config: cfg,
			Manifest: fmt.Sprintf("# revision %d\n", i+1), Info: &helmrelease.Info{Status: status}}
		if err := store.Create(rel); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

func stageOpts(stage string, set ...string) StageOptions {
	return StageOptions{Stage: stage, Release: "pp", Values: set}
}

func overrides(t *testing.T, set ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, kv := range set {
		k, v, _ := strings.Cut(kv, "=")
		m := out
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

func mustPlan(t *testing.T, store *storage.Storage, o StageOptions) *stagePlan {
	t.Helper()
	p, err := planStage(store, planInput{Options: o, Overrides: overrides(t, o.Values...)})
	if err != nil {
		t.Fatalf("plan of stage %s: %v", o.Stage, err)
	}
	return p
}

type wantStep struct {
	stage    string
	draining bool
}

func checkSteps(t *testing.T, p *stagePlan, want ...wantStep) {
	t.Helper()
	if len(p.Steps) != len(want) {
		t.Fatalf("plan has %d steps, want %d: %+v", len(p.Steps), len(want), p.Steps)
	}
	for i, w := range want {
		s := p.Steps[i]
		if s.Stage.String() != w.stage || s.Draining != w.draining {
			t.Errorf("step %d: stage %s draining %v, want %s draining %v", i+1, s.Stage, s.Draining, w.stage, w.draining)
		}
		// Hazard 2: a warm-up (canary pods up, no traffic) holds the next step back
		// until they are Ready; final's drain does not wait on readiness.
		if warmUp := w.draining && w.stage != "final"; s.WaitReady != warmUp {
			t.Errorf("step %d: waits for ready canary pods %v, want %v", i+1, s.WaitReady, warmUp)
		}
		// The canary block each upgrade stores is the step's own.
		if got := dig(s.Values, ValuesKey, "stage"); got != w.stage {
			t.Errorf("step %d: values %s.stage = %v, want %s", i+1, ValuesKey, got, w.stage)
		}
		if got, _ := dig(s.Values, ValuesKey, "draining").(bool); got != w.draining {
			t.Errorf("step %d: values %s.draining = %v, want %v", i+1, ValuesKey, got, w.draining)
		}
		ropts, err := options(s.State.Config, nil)
		if err != nil {
			t.Fatalf("step %d: renderer options: %v", i+1, err)
		}
		if ropts.Stage.String() != w.stage || ropts.Draining != w.draining {
			t.Errorf("step %d: renders stage %s draining %v, want %s draining %v", i+1, ropts.Stage, ropts.Draining, w.stage, w.draining)
		}
	}
}

// Every row of the stage table, from the stage seed 001 walks it from.
func TestPlanStageTable(t *testing.T) {
	ch := plainChart()
	stable := rev{stage: "stable", tag: "83"}
	tests := []struct {
		name    string
		history []rev
		stage   string
		set     []string
		steps   []wantStep
		tag     string // image.tag the upgrades carry
		base    int    // revision the values come from
		pinned  int    // revision whose manifest pins production
	}{
		{"stable to 10 with a new version warms the canary up first", []rev{stable}, "10", []string{"image.tag=84"}, []wantStep{{"0", true}, {"10", false}}, "84", 1, 1},
		{"10 after an interrupted warm-up waits again", []rev{stable, {stage: "0", draining: true, tag: "84"}}, "10", nil, []wantStep{{"0", true}, {"10", false}}, "84", 2, 2},
		{"a new canary after final warms up", []rev{stable, {stage: "final", tag: "84"}}, "10", []string{"image.tag=85"}, []wantStep{{"0", true}, {"10", false}}, "85", 2, 2},
		{"10 to 90", []rev{stable, {stage: "10", tag: "84"}}, "90", nil, []wantStep{{"90", false}}, "84", 2, 2},
		{"90 to 100", []rev{stable, {stage: "10", tag: "84"}, {stage: "90", tag: "84"}}, "100", nil, []wantStep{{"100", false}}, "84", 3, 3},
		{"100 to swap", []rev{stable, {stage: "100", tag: "84"}}, "swap", nil, []wantStep{{"swap", false}}, "84", 2, 2},
		{"swap to final drains first", []rev{stable, {stage: "100", tag: "84"}, {stage: "swap", tag: "84"}}, "final", nil, []wantStep{{"final", true}, {"final", false}}, "84", 3, 3},
		{"final again after its drain", []rev{stable, {stage: "final", draining: true, tag: "84"}}, "final", nil, []wantStep{{"final", true}, {"final", false}}, "84", 2, 2},
		{"final once done is one step", []rev{stable, {stage: "final", tag: "84"}}, "final", nil, []wantStep{{"final", false}}, "84", 2, 2},
		{"stable to preview warms the canary up first", []rev{stable}, "preview", []string{"image.tag=84"}, []wantStep{{"0", true}, {"preview", false}}, "84", 1, 1},
		{"stable during a warm-up restores the stable revision", []rev{stable, {stage: "0", draining: true, tag: "84"}}, "stable", nil, []wantStep{{"stable", false}}, "83", 1, 1},
		{"stable from 90 restores the stable revision", []rev{stable, {stage: "10", tag: "84"}, {stage: "90", tag: "84"}}, "stable", nil, []wantStep{{"stable", false}}, "83", 1, 1},
		{"stable from swap restores production too", []rev{stable, {stage: "100", tag: "84"}, {stage: "swap", tag: "84"}}, "stable", nil, []wantStep{{"stable", false}}, "83", 1, 1},
		{"stable after final restores final", []rev{stable, {stage: "final", tag: "84"}, {stage: "10", tag: "85"}}, "stable", nil, []wantStep{{"stable", false}}, "84", 2, 2},
		{"stable skips final's drain", []rev{stable, {stage: "final", draining: true, tag: "84"}}, "stable", nil, []wantStep{{"stable", false}}, "83", 1, 1},
		{"stable of a release that never was stable", []rev{{stage: "10", tag: "84"}}, "stable", nil, []wantStep{{"stable", false}}, "84", 1, 1},
		{"failed newest revision: planned from the deployed one", []rev{stable, {stage: "10", tag: "84", status: helmrelease.StatusDeployed}, {stage: "90", tag: "84", status: helmrelease.StatusFailed}}, "90", nil, []wantStep{{"90", false}}, "84", 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := memoryStore(t, ch, tt.history...)
			p := mustPlan(t, store, stageOpts(tt.stage, tt.set...))
			checkSteps(t, p, tt.steps...)
			for i, s := range p.Steps {
				if got := dig(s.Values, "image", "tag"); got != tt.tag {
					t.Errorf("step %d: image.tag %v, want %s", i+1, got, tt.tag)
				}
			}
			if p.Base.Version != tt.base {
				t.Errorf("values come from revision %d, want %d", p.Base.Version, tt.base)
			}
			if want := fmt.Sprintf("# revision %d\n", tt.pinned); string(p.Production) != want {
				t.Errorf("production pinned to %q, want %q", p.Production, want)
			}
			if _, ok := p.Mode.(postRenderMode); !ok {
				t.Errorf("mode %s, want the post-renderer", p.Mode)
			}
		})
	}
}

// Any weight 0..100 is one upgrade to that weight from another weight; from stable
// the canary's pods first start with no traffic (hazard 2).
func TestPlanEveryWeight(t *testing.T) {
	for _, from := range []string{"stable", "37"} {
		store := memoryStore(t, plainChart(), rev{stage: "stable", tag: "83"}, rev{stage: from, tag: "84"})
		for w := 0; w <= 100; w++ {
			p := mustPlan(t, store, stageOpts(fmt.Sprint(w)))
			if from == "stable" {
				checkSteps(t, p, wantStep{"0", true}, wantStep{fmt.Sprint(w), false})
			} else {
				checkSteps(t, p, wantStep{fmt.Sprint(w), false})
			}
			if s := p.Steps[len(p.Steps)-1].Stage; s.CanaryWeight()+s.ProductionWeight() != 100 || s.CanaryWeight() != w {
				t.Errorf("stage %d: weights %d/%d", w, s.ProductionWeight(), s.CanaryWeight())
			}
		}
	}
}

// Each refusal is an error from the plan, so nothing is ever applied.
func TestPlanRefusals(t *testing.T) {
	ch := plainChart()
	withDep := plainChart()
	withDep.Metadata.Dependencies = []*chart.Dependency{{Name: "common", Version: "2.x", Repository: "oci://registry-1.docker.io/bitnamicharts"}}
	stable := rev{stage: "stable", tag: "83"}
	tests := []struct {
		name    string
		chart   *chart.Chart
		history []rev
		o       StageOptions
		want    string
	}{
		{"unknown stage", ch, []rev{stable}, stageOpts("halfway"), "unknown stage"},
		{"no stage", ch, []rev{stable}, stageOpts(""), "stage is empty"},
		{"a stored stage helm-canary cannot read", ch, []rev{{stage: "halfway", tag: "83"}}, stageOpts("10"), `the release's values say canary.stage "halfway"`},
		{"weight out of range", ch, []rev{stable}, stageOpts("101"), "between 0 and 100"},
		{"swap before 100", ch, []rev{stable, {stage: "10", tag: "84"}}, stageOpts("swap"), "run stage 100 first"},
		{"final from stable", ch, []rev{stable}, stageOpts("final"), "run stage swap first"},
		{"final from 100", ch, []rev{stable, {stage: "100", tag: "84"}}, stageOpts("final"), "run stage swap first"},
		{"new values at swap", ch, []rev{stable, {stage: "100", tag: "84"}}, stageOpts("swap", "image.tag=85"), "takes no new chart or values"},
		{"new values at final", ch, []rev{stable, {stage: "swap", tag: "84"}}, stageOpts("final", "image.tag=85"), "takes no new chart or values"},
		{"pending revision", ch, []rev{stable, {stage: "10", tag: "84", status: helmrelease.StatusPendingUpgrade}}, stageOpts("90"), "operation in progress"},
		{"dependencies not stored", withDep, []rev{stable}, stageOpts("10", "image.tag=84"), "name the chart"},
		{"a chart value named canary", ch, []rev{{tag: "83"}}, stageOpts("10"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := memoryStore(t, tt.chart, tt.history...)
			if tt.want == "" {
				// A release whose values were never staged plans from stable.
				mustPlan(t, store, tt.o)
				return
			}
			_, err := planStage(store, planInput{Options: tt.o, Overrides: overrides(t, tt.o.Values...)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			// --force lets the unsafe transitions through, not the broken ones.
			if strings.Contains(tt.want, "first") || strings.Contains(tt.want, "no new chart") {
				o := tt.o
				o.Force = true
				if _, err := planStage(store, planInput{Options: o, Overrides: overrides(t, o.Values...)}); err != nil {
					t.Errorf("with --force: %v", err)
				}
			}
		})
	}
	// A release that does not exist.
	_, err := planStage(memoryStore(t, ch), planInput{Options: stageOpts("10")})
	if err == nil || !strings.Contains(err.Error(), ErrNotFound.Error()) {
		t.Errorf("missing release: %v", err)
	}
	// A canary block helm-canary cannot read.
	store := storage.Init(driver.NewMemory())
	_ = store.Create(&helmrelease.Release{Name: "pp", Version: 1, Chart: ch, Info: &helmrelease.Info{Status: helmrelease.StatusDeployed},
		Config: map[string]any{ValuesKey: map[string]any{"enabled": true}}})
	if _, err := planStage(store, planInput{Options: stageOpts("10")}); err == nil || !strings.Contains(err.Error(), "another chart value") {
		t.Errorf("foreign canary: block: %v", err)
	}
	// A new chart at swap is refused; the same chart named again is no new version.
	newer := plainChart()
	newer.Metadata.Version = "0.2.0"
	store = memoryStore(t, ch, stable, rev{stage: "100", tag: "84"})
	if _, err := planStage(store, planInput{Options: stageOpts("swap"), Chart: newer}); err == nil || !strings.Contains(err.Error(), "takes no new chart or values") {
		t.Errorf("a new chart at swap: %v", err)
	}
	if _, err := planStage(store, planInput{Options: stageOpts("swap"), Chart: plainChart()}); err != nil {
		t.Errorf("the same chart named again at swap: %v", err)
	}
	// A workload's stored stage helm-canary cannot read.
	store = storage.Init(driver.NewMemory())
	_ = store.Create(&helmrelease.Release{Name: "pp", Version: 1, Chart: ch, Info: &helmrelease.Info{Status: helmrelease.StatusDeployed},
		Config: map[string]any{ValuesKey: map[string]any{"stage": "stable", "workloads": map[string]any{"reviews": map[string]any{"stage": "most"}}}}})
	o := stageOpts("10")
	o.Workloads = []string{"reviews"}
	if _, err := planStage(store, planInput{Options: o}); err == nil || !strings.Contains(err.Error(), `canary.workloads.reviews.stage "most"`) {
		t.Errorf("unreadable workload stage: %v", err)
	}
}

// Library mode: the stage goes into seed 001's values, production's image pinned.
func TestPlanLibraryMode(t *testing.T) {
	ch := libraryTestChart()
	store := storage.Init(driver.NewMemory())
	on := map[string]any{"canaryLib": map[string]any{"enabled": true}, ValuesKey: map[string]any{"stage": "stable"},
		"productionDeployment": map[string]any{"image": map[string]any{"tag": "83"}}}
	_ = store.Create(&helmrelease.Release{Name: "pp", Version: 1, Chart: ch, Config: on, Info: &helmrelease.Info{Status: helmrelease.StatusDeployed}})
	o := stageOpts("10", "canaryDeployment.image.tag=84")
	p := mustPlan(t, store, o)
	if _, ok := p.Mode.(libraryChartMode); !ok {
		t.Fatalf("mode %s, want library", p.Mode)
	}
	checkSteps(t, p, wantStep{"0", true}, wantStep{"10", false})
	// The warm-up runs the canary's pods, new image, with no traffic.
	warm := p.Steps[0].Values
	if got := dig(warm, "canaryDeployment", "replicaCount"); got != 2 {
		t.Errorf("warm-up: canary replicas %v, want 2", got)
	}
	if got := dig(warm, "canaryDeployment", "image", "tag"); got != "84" {
		t.Errorf("warm-up: canary image tag %v, want 84", got)
	}
	if p, c := dig(warm, "productionDeployment", "weight"), dig(warm, "canaryDeployment", "weight"); p != 100 || c != 0 {
		t.Errorf("warm-up: weights %v/%v, want 100/0", p, c)
	}
	v := p.Steps[1].Values
	if got := dig(v, "productionDeployment", "image", "tag"); got != "83" {
		t.Errorf("production image tag %v, want 83 (pinned)", got)
	}
	if got := dig(v, "canaryDeployment", "image", "tag"); got != "84" {
		t.Errorf("canary image tag %v, want 84", got)
	}
	if p, c := dig(v, "productionDeployment", "weight"), dig(v, "canaryDeployment", "weight"); p != 90 || c != 10 {
		t.Errorf("weights %v/%v, want 90/10", p, c)
	}
	// A new production image before swap is refused.
	o = stageOpts("10", "productionDeployment.image.tag=85")
	if _, err := planStage(store, planInput{Options: o, Overrides: overrides(t, o.Values...)}); err == nil || !strings.Contains(err.Error(), "changes only at swap") {
		t.Errorf("production image at 10: %v", err)
	}
}

// --workload moves one workload; the release and the others stay.
func TestPlanOneWorkload(t *testing.T) {
	manifest, err := os.ReadFile("../test/golden/bookinfo-reviews-10/expected.yaml")
	if err != nil {
		t.Fatal(err)
	}
	store := storage.Init(driver.NewMemory())
	_ = store.Create(&helmrelease.Release{Name: "pp", Version: 1, Chart: plainChart(), Manifest: string(manifest),
		Config: map[string]any{ValuesKey: map[string]any{"stage": "stable", "workloads": map[string]any{"reviews-v2": map[string]any{}, "ratings": map[string]any{"stage": "10"}}}},
		Info:   &helmrelease.Info{Status: helmrelease.StatusDeployed}})
	o := stageOpts("90")
	o.Workloads = []string{"reviews-v2"}
	p := mustPlan(t, store, o)
	if len(p.Steps) != 2 {
		t.Fatalf("steps %+v, want reviews-v2's warm-up then 90", p.Steps)
	}
	// reviews-v2's canary starts with no traffic and is waited for (hazard 2).
	warm := p.Steps[0]
	if w := warm.State.Workloads["reviews-v2"]; w.Stage != "0" || !w.Draining || !warm.WaitReady || warm.State.Workloads["ratings"].Stage != "10" {
		t.Errorf("first step %+v (waits %v): want reviews-v2 warming up at 0, ratings still at 10", warm.State.Config, warm.WaitReady)
	}
	st := p.Steps[1].State
	if st.Stage != "stable" || st.Workloads["reviews-v2"].Stage != "90" || st.Workloads["reviews-v2"].Draining || st.Workloads["ratings"].Stage != "10" {
		t.Errorf("state %+v: want release stable, reviews-v2 at 90, ratings still at 10", st.Config)
	}
	// The plan's states are copies: planning again starts from the stored state.
	again := mustPlan(t, store, o)
	if again.Steps[1].State.Workloads["reviews-v2"].Stage != "90" {
		t.Errorf("second plan: %+v", again.Steps[1].State.Config)
	}
	if p.Steps[1].State.Workloads["ratings"].Stage != "10" {
		t.Error("planning changed another plan's state")
	}
	o.Stage = "final"
	if _, err := planStage(store, planInput{Options: o}); err == nil || !strings.Contains(err.Error(), "workload reviews-v2") {
		t.Errorf("final for a workload at stable: %v", err)
	}
}

// A chart whose dependencies Helm did not store: the rollback re-applies the last
// stable revision's manifest, with its values at stage stable; other stages still
// need the chart.
func TestPlanRestoreWithoutDependencies(t *testing.T) {
	ch := plainChart()
	ch.Metadata.Dependencies = []*chart.Dependency{{Name: "common", Version: "2.x"}}
	for _, tt := range []struct {
		name    string
		history []rev
		base    int
	}{
		{"from 10", []rev{{stage: "stable", tag: "83"}, {stage: "10", tag: "84"}}, 1},
		{"from swap", []rev{{stage: "stable", tag: "83"}, {stage: "100", tag: "84"}, {stage: "swap", tag: "84"}}, 1},
		{"after final", []rev{{stage: "stable", tag: "83"}, {stage: "final", draining: true, tag: "84"}, {stage: "final", tag: "84"}, {stage: "10", tag: "85"}}, 3},
		{"during final's drain", []rev{{stage: "stable", tag: "83"}, {stage: "swap", tag: "84"}, {stage: "final", draining: true, tag: "84"}}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := memoryStore(t, ch, tt.history...)
			p := mustPlan(t, store, stageOpts("stable"))
			if !p.RestoreManifest || p.Base.Version != tt.base {
				t.Fatalf("plan restores revision %d (restore %v), want revision %d's manifest", p.Base.Version, p.RestoreManifest, tt.base)
			}
			checkSteps(t, p, wantStep{"stable", false})
			if got, want := dig(p.Steps[0].Values, "image", "tag"), tt.history[tt.base-1].tag; got != want {
				t.Errorf("values image.tag %v, want %s (revision %d's)", got, want, tt.base)
			}
			if n := len(tt.history); dig(p.Base.Config, ValuesKey, "stage") != tt.history[tt.base-1].stage || len(mustHistory(t, store)) != n {
				t.Error("planning changed the stored revisions")
			}
		})
	}
	// Another stage, or new values, need the chart (its templates use the subcharts').
	store := memoryStore(t, ch, rev{stage: "stable", tag: "83"}, rev{stage: "10", tag: "84"})
	o := stageOpts("stable", "image.tag=86")
	if _, err := planStage(store, planInput{Options: o, Overrides: overrides(t, o.Values...)}); err == nil || !strings.Contains(err.Error(), "name the chart") {
		t.Errorf("stable with new values: %v", err)
	}
}

func mustHistory(t *testing.T, store *storage.Storage) []*helmrelease.Release {
	t.Helper()
	h, err := store.History("pp")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A schema that forbids unknown top-level keys (cert-manager's, Istio's gateway
// chart's) does not refuse the canary: block, and still checks the user's values.
func TestPlanStrictSchema(t *testing.T) {
	ch := plainChart()
	ch.Schema = []byte(`{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
	  "properties": {"replicaCount": {"type": "integer"}, "image": {"type": "object", "additionalProperties": false,
	    "properties": {"repository": {"type": "string"}, "tag": {"type": "string"}}}}}`)
	store := memoryStore(t, ch, rev{stage: "stable", tag: "83"}, rev{stage: "10", tag: "84"})
	for _, stage := range []string{"90", "100", "preview", "stable"} {
		p := mustPlan(t, store, stageOpts(stage))
		if dig(p.Steps[0].Values, ValuesKey, "stage") != stage {
			t.Errorf("stage %s: values %v", stage, p.Steps[0].Values)
		}
	}
	if err := validateValues(ch, mustPlan(t, store, stageOpts("90")).Steps[0].Values); err != nil {
		t.Errorf("the chart's values with the canary block: %v", err)
	}
	for set, want := range map[string]string{"bogus=1": "bogus", "image.registry=x": "registry", "replicaCount=two": "replicaCount"} {
		o := stageOpts("90", set)
		_, err := planStage(store, planInput{Options: o, Overrides: overrides(t, o.Values...)})
		if err == nil || !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), want) {
			t.Errorf("--set %s: %v, want the schema's refusal naming %s", set, err, want)
		}
	}
}

// A library-mode chart's canary-lib, which Helm did not store, comes back from the
// plugin's own copy when the versions match exactly: traffic moves need no CHART.
func TestPlanLibraryFromThePlugin(t *testing.T) {
	libs := PluginLibraries("..")
	if libs[libraryChart] == nil {
		t.Fatal("charts/canary-lib did not load from the checkout")
	}
	version := libs[libraryChart].Metadata.Version
	stored := func(want string) *chart.Chart {
		ch := libraryTestChart()
		ch.Metadata.Dependencies[0].Version = want
		ch.SetDependencies() // as Helm stores it: no subcharts
		return ch
	}
	on := map[string]any{"canaryLib": map[string]any{"enabled": true}, ValuesKey: map[string]any{"stage": "10"}}
	for _, tt := range []struct {
		version string
		ok      bool
	}{{version, true}, {"0.0.1-other", false}} {
		store := storage.Init(driver.NewMemory())
		_ = store.Create(&helmrelease.Release{Name: "pp", Version: 1, Chart: stored(tt.version), Config: on, Info: &helmrelease.Info{Status: helmrelease.StatusDeployed}})
		p, err := planStage(store, planInput{Options: stageOpts("90"), Libraries: libs})
		if !tt.ok {
			if err == nil || !strings.Contains(err.Error(), "name the chart") {
				t.Errorf("canary-lib %s wanted, the plugin has %s: %v", tt.version, version, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("canary-lib %s: %v", tt.version, err)
		}
		if deps := p.Chart.Dependencies(); len(deps) != 1 || deps[0].Name() != libraryChart {
			t.Errorf("plan's chart has dependencies %v, want canary-lib", deps)
		}
		if _, ok := p.Mode.(libraryChartMode); !ok {
			t.Errorf("mode %s, want library", p.Mode)
		}
		if len(p.Steps[0].Values) == 0 || dig(p.Steps[0].Values, "canaryDeployment", "weight") != 90 {
			t.Errorf("values %v", p.Steps[0].Values)
		}
		h, _ := store.History("pp")
		if len(h[0].Chart.Dependencies()) != 0 {
			t.Error("the stored chart was changed")
		}
	}
}

// Before each step the apply loop checks that nobody made a revision since the
// plan (or the previous step): a rollback during final's drain is not overwritten.
func TestStillNewest(t *testing.T) {
	store := memoryStore(t, plainChart(), rev{stage: "stable", tag: "83"}, rev{stage: "swap", tag: "84"})
	c := &Client{cfg: &action.Configuration{Releases: store}}
	p := mustPlan(t, store, stageOpts("final"))
	if err := c.stillNewest(p, 0, p.Last); err != nil {
		t.Fatalf("nothing moved: %v", err)
	}
	// final's first step made revision 3; a rollback made revision 4 during the drain.
	drained := &helmrelease.Release{Name: "pp", Version: 3, Chart: plainChart(), Info: &helmrelease.Info{Status: helmrelease.StatusSuperseded},
		Config: map[string]any{ValuesKey: map[string]any{"stage": "final", "draining": true}}}
	rollback := &helmrelease.Release{Name: "pp", Version: 4, Chart: plainChart(), Info: &helmrelease.Info{Status: helmrelease.StatusDeployed},
		Config: map[string]any{ValuesKey: map[string]any{"stage": "stable"}}}
	for _, r := range []*helmrelease.Release{drained, rollback} {
		if err := store.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	err := c.stillNewest(p, 1, drained)
	if err == nil {
		t.Fatal("final's second step would overwrite revision 4")
	}
	for _, want := range []string{"stopped after step 1 of 2", "revision 4 (deployed, stage stable)", "not overwritten", "revision 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
	if err := c.stillNewest(p, 0, p.Last); err == nil || !strings.Contains(err.Error(), "applied nothing") {
		t.Errorf("a plan made before revision 4: %v", err)
	}
}

// A revision left pending by a killed command: every stage is refused naming the
// recovery, which is the rollback planned over it.
func TestPlanPendingRecovery(t *testing.T) {
	store := memoryStore(t, plainChart(), rev{stage: "stable", tag: "83", status: helmrelease.StatusDeployed}, rev{stage: "10", tag: "84", status: helmrelease.StatusPendingUpgrade})
	for _, stage := range []string{"10", "90", "stable"} {
		_, err := planStage(store, planInput{Options: stageOpts(stage)})
		if err == nil || !strings.Contains(err.Error(), "helm canary rollback pp -n default") {
			t.Errorf("stage %s on a pending release: %v", stage, err)
		}
	}
	p, err := planStage(store, planInput{Options: stageOpts("stable"), RecoverPending: true})
	if err != nil {
		t.Fatal(err)
	}
	checkSteps(t, p, wantStep{"stable", false})
	if p.Last.Version != 2 || p.Base.Version != 1 || dig(p.Steps[0].Values, "image", "tag") != "83" {
		t.Errorf("recovery plan: last %d, base %d, values %v", p.Last.Version, p.Base.Version, p.Steps[0].Values)
	}
}
