package release

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/cli"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// countingDriver counts the reads of a release's whole history (a Query without a
// status label: Helm's Storage.History and Storage.Last), which decode every
// revision, up to the first revision a command stores.
type countingDriver struct {
	driver.Driver
	mu                   sync.Mutex
	historyReads, before int
	created              bool
}

func (d *countingDriver) Query(labels map[string]string) ([]*helmrelease.Release, error) {
	d.mu.Lock()
	if _, byStatus := labels["status"]; !byStatus {
		d.historyReads++
	}
	d.mu.Unlock()
	return d.Driver.Query(labels)
}

func (d *countingDriver) Create(key string, rls *helmrelease.Release) error {
	d.mu.Lock()
	if !d.created {
		d.created, d.before = true, d.historyReads
	}
	d.mu.Unlock()
	return d.Driver.Create(key, rls)
}

// A stage command that moves forward decodes the live revision alone and asks for
// the next revision number, and gives Helm's upgrade that newest revision, so no
// read of the whole history precedes the revision it stores: each such read
// decodes every revision, and a release staged by helm-canary keeps them all. A
// rollback reads the revisions before it one at a time back to the stable one.
// The history was read five times before a forward move, then twice, then once
// (Helm's own); twice before a rollback, then once.
func TestStageReadsHistoryOnce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stage string
		set   []string
		want  int
	}{
		{"traffic move", "50", nil, 0},
		{"new version at a canary stage", "10", []string{"image.tag=85"}, 0},
		{"rollback", "stable", nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeClient()
			counting := &countingDriver{Driver: c.cfg.Releases.Driver}
			c.cfg.Releases = storage.Init(counting)
			installFake(t, c, true, map[string]any{"image": map[string]any{"tag": "83"}})
			stageFake(t, c, "10", nil, false, "image.tag=84")
			before := len(mustHistory(t, c.cfg.Releases))
			*counting = countingDriver{Driver: counting.Driver}

			c.Settings = clientSettings(t)
			// What follows the upgrade (drift repair, which reads the live routing
			// objects) fails without a cluster; the upgrade is what is counted.
			_, _ = c.Stage(context.Background(), StageOptions{Stage: tt.stage, Release: "pp", Values: tt.set})
			if after := len(mustHistory(t, c.cfg.Releases)); after != before+1 {
				t.Fatalf("%d revisions after the stage, want %d", after, before+1)
			}
			if counting.before != tt.want {
				t.Errorf("the release's history was read %d times before the command stored its revision, want %d", counting.before, tt.want)
			}
		})
	}
}

// clientSettings are Helm's settings pointed at a kubeconfig that does not exist:
// a test reaches no cluster, whatever the environment says.
func clientSettings(t *testing.T) *cli.EnvSettings {
	s := cli.New()
	s.KubeConfig = filepath.Join(t.TempDir(), "no-kubeconfig")
	return s
}

// With the newest revision given, Helm's storage is an exact lock on the plan: a
// revision another command stored after the check is not superseded by a revision
// made over it; the upgrade fails and stores nothing. (Reading the history itself,
// Helm would have made the next revision over the other command's.)
func TestUpgradeOverAnotherCommandsRevisionFails(t *testing.T) {
	c := fakeClient()
	installFake(t, c, true, map[string]any{"image": map[string]any{"tag": "83"}})
	o := stageOpts("10", "image.tag=84")
	plan, err := planStage(c.cfg.Releases, planInput{Options: o, Overrides: overrides(t, o.Values...)})
	if err != nil {
		t.Fatal(err)
	}
	// Another command's revision, stored after the plan's check.
	other := *plan.Last
	other.Version++
	other.Info = &helmrelease.Info{Status: helmrelease.StatusDeployed, Description: "another command"}
	if err := c.cfg.Releases.Create(&other); err != nil {
		t.Fatal(err)
	}
	pr, err := plan.Mode.postRenderer(plan.Steps[0].State, plan.Production, c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.upgrade(context.Background(), o, plan.Last, plan.Chart, plan.Steps[0].Values, pr)
	if err == nil || !strings.Contains(err.Error(), "upgraded by another command") {
		t.Fatalf("upgrade over another command's revision: %v, want the lost race named", err)
	}
	h := mustHistory(t, c.cfg.Releases)
	if newest := newestOf(h); newest.Version != other.Version || newest.Info.Description != "another command" {
		t.Errorf("newest revision %d (%s), want the other command's %d untouched", newest.Version, newest.Info.Description, other.Version)
	}
}

// A rollback finds the stable revision it goes back to by reading revisions one at
// a time from the newest back, and past walkLimit reads the whole history at once:
// the same revision either way.
func TestRollbackFindsTheStableRevision(t *testing.T) {
	for _, tt := range []struct {
		name         string
		stableAt     int
		revisions    int
		historyReads int
	}{
		{"a few revisions back", 9, 12, 0},
		{"past the walk", 1, 12, 1},
		{"none stable", 0, 4, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var revs []rev
			for i := 1; i <= tt.revisions; i++ {
				r := rev{stage: fmt.Sprint(10 * (i%9 + 1)), tag: fmt.Sprint(80 + i)}
				if i == tt.stableAt {
					r.stage = "stable"
				}
				revs = append(revs, r)
			}
			mem := memoryStore(t, plainChart(), revs...)
			counting := &countingDriver{Driver: mem.Driver}
			store := storage.Init(counting)
			p, err := planStage(store, planInput{Options: stageOpts("stable")})
			if err != nil {
				t.Fatal(err)
			}
			want := tt.stableAt
			if want == 0 {
				want = tt.revisions // never stable: the current revision
			}
			if p.Base.Version != want {
				t.Errorf("rollback goes back to revision %d, want %d", p.Base.Version, want)
			}
			if counting.historyReads != tt.historyReads {
				t.Errorf("%d reads of the whole history, want %d", counting.historyReads, tt.historyReads)
			}
		})
	}
}
