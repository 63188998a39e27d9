package release

import (
	"context"
	"fmt"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/helm-canary/helm-canary/stages"
)

// A rollback of a release whose stored chart cannot be rendered again (Helm keeps
// no subcharts with a release: every chart with a dependency, bitnami's `common`,
// canary-lib) re-applies the stored manifest of the last stable revision, which
// holds the subcharts' objects, the way `helm rollback` does. That manifest already
// is a stable one (production on the stable version, canary at 0 replicas, all
// traffic on production); the new revision's canary block says stable.
//
// Helm's Rollback action does the applying (hooks, three-way update, superseding
// the deployed revision), so a restore behaves as `helm rollback REVISION` does.
// It copies the target revision's values verbatim; restoring reads that revision
// through storageRewrite, which hands the action the same revision with the canary
// block set to stable, and changes nothing stored.

// restore re-applies revision base's manifest as a new revision.
func (c *Client) restore(ctx context.Context, o StageOptions, plan *stagePlan) (*StageResult, error) {
	base, step := plan.Base, plan.Steps[0]
	title := fmt.Sprintf("stage stable (revision %d's manifest re-applied, as helm rollback does)", base.Version)
	m := c.mesh
	if o.DryRun {
		diff := diffManifests(c.asLive(ctx, plan.Current.Manifest), base.Manifest, title)
		if m != nil {
			before := ""
			if m.last != nil {
				before = m.client.asLive(ctx, m.last.Manifest)
			}
			diff += diffManifests(before, m.restoreFrom.Manifest, fmt.Sprintf("%s, mesh cluster (%s), release %s revision %d's routing objects", title, m.where, m.release, m.restoreFrom.Version))
		}
		return &StageResult{Diff: diff}, nil
	}
	if err := c.stillNewest(plan, 0, plan.Last); err != nil {
		return nil, err
	}
	var meshRel *helmrelease.Release
	if m != nil {
		// Away from the canary: the routes first (see mesh.go), the companion
		// revision that went with base's, re-applied as stored.
		fmt.Fprintf(c.Log, "%s: the routes first, in the mesh cluster (%s), then the workloads\n", title, m.where)
		var err error
		if meshRel, err = m.apply(ctx, o, base.Chart, step.State, []byte(m.restoreFrom.Manifest), plan.Release, plan.Last.Version+1); err != nil {
			return nil, fmt.Errorf("%s: the mesh cluster's release %q (%s) failed, so nothing was changed in the workload cluster (the release %q is at revision %d, %s): %w; run the same command again",
				title, m.release, m.where, plan.Release, plan.Current.Version, describeState(canaryStateOf(plan.Current)), err)
		}
	}
	cfg := *c.cfg
	cfg.Releases = &storage.Storage{Driver: storageRewrite{Driver: c.cfg.Releases.Driver, name: base.Name, version: base.Version, config: step.Values},
		MaxHistory: c.cfg.Releases.MaxHistory, Log: c.cfg.Releases.Log}
	rb := action.NewRollback(&cfg)
	rb.Version = base.Version
	rb.DisableHooks = o.DisableHooks
	rb.Timeout = o.Timeout
	done := make(chan error, 1)
	go func() { done <- rb.Run(o.Release) }()
	select {
	case err := <-done:
		if err != nil && meshRel != nil {
			return nil, fmt.Errorf("%s is half applied: the mesh cluster's release %q (%s) is at revision %d (%s: its routes already send all traffic to production), but the workload cluster's rollback to revision %d failed, so the release %q is at revision %d (%s): %w; "+
				"run the same command again to finish it", title, m.release, m.where, meshRel.Version, describeState(step.State), base.Version, plan.Release, plan.Current.Version, describeState(canaryStateOf(plan.Current)), err)
		}
		if err != nil {
			return nil, fmt.Errorf("rollback of release %q to revision %d: %w", o.Release, base.Version, err)
		}
	case <-ctx.Done():
		// Helm's Rollback takes no context: wait a moment for it to record its
		// result rather than leave the revision pending.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		if meshRel != nil {
			return nil, fmt.Errorf("rollback of release %q interrupted after the mesh cluster's release %q (%s) went to revision %d (all traffic on production): %w; run the same command again to finish it", o.Release, m.release, m.where, meshRel.Version, ctx.Err())
		}
		return nil, fmt.Errorf("rollback of release %q interrupted: %w", o.Release, ctx.Err())
	}
	rel, err := c.cfg.Releases.Last(o.Release)
	if err != nil {
		return nil, err
	}
	res := &StageResult{Release: rel, Revisions: []int{rel.Version},
		Steps: []string{fmt.Sprintf("stage stable (revision %d), revision %d's manifest re-applied", rel.Version, base.Version)}}
	if meshRel != nil {
		res.Steps = append([]string{fmt.Sprintf("routing objects in the mesh cluster (%s): release %s revision %d, revision %d's routing objects re-applied", m.where, m.release, meshRel.Version, m.restoreFrom.Version)}, res.Steps...)
	}
	repaired, err := c.repairDrift(ctx, rel)
	if err != nil {
		return res, err
	}
	for _, r := range repaired {
		fmt.Fprintf(c.Log, "Repaired drift: %s had been changed outside the release; its spec is the release's again.\n", r)
	}
	if o.Wait {
		return res, c.waitRollout(ctx, o, rel.Manifest, trackLabel(step.State.Config))
	}
	return res, nil
}

// canaryStateOf is a revision's canary block, or stable when it has none or it
// cannot be read (for messages).
func canaryStateOf(rel *helmrelease.Release) canaryState {
	st, err := readState(rel.Config)
	if err != nil {
		return canaryState{}
	}
	if st.Stage == "" {
		if inferred, ok := inferredState(rel.Manifest, rel.Namespace, trackLabel(st.Config)); ok {
			st.setRelease(stages.Step{Stage: inferred.Stage, Draining: inferred.Draining})
		}
	}
	return st
}

// storageRewrite is Helm's release storage with one revision read with other
// values: what Helm's Rollback copies into the revision it creates.
type storageRewrite struct {
	driver.Driver
	name    string
	version int
	config  map[string]any
}

func (s storageRewrite) Get(key string) (*helmrelease.Release, error) {
	rel, err := s.Driver.Get(key)
	if err != nil || rel.Name != s.name || rel.Version != s.version {
		return rel, err
	}
	out := *rel
	out.Config = s.config
	return &out, nil
}

// recoverPending marks a revision left pending by an interrupted command (SIGKILL,
// a crashed runner, an API outage mid-upgrade) as failed, so that a rollback can
// run: what `helm rollback` does implicitly by ignoring it.
func (c *Client) recoverPending(rel *helmrelease.Release) error {
	was := rel.Info.Status
	rel.Info.Status = helmrelease.StatusFailed
	rel.Info.Description = fmt.Sprintf("%s; found %s with no command running, marked failed by helm canary rollback", strings.TrimSpace(rel.Info.Description), was)
	if err := c.cfg.Releases.Update(rel); err != nil {
		return fmt.Errorf("marking revision %d of release %q failed: %w", rel.Version, rel.Name, err)
	}
	fmt.Fprintf(c.Log, "Release %q: revision %d was %s with no command running on it (an interrupted command); marked it failed.\n", rel.Name, rel.Version, was)
	return nil
}

// pendingError is the refusal for a release whose newest revision is pending,
// with the command that recovers it.
func pendingError(rel *helmrelease.Release, namespace string) error {
	since := ""
	if !rel.Info.LastDeployed.IsZero() {
		since = fmt.Sprintf(" since %s (%s ago)", rel.Info.LastDeployed.UTC().Format(time.RFC3339), time.Since(rel.Info.LastDeployed.Time).Round(time.Second))
	}
	return fmt.Errorf("release %q has an operation in progress, or an interrupted one: revision %d is %s%s. If a helm or helm-canary command is still running on it, wait for it to finish; if none is (it was killed, its runner crashed, the API server went away), recover with: helm canary rollback %s -n %s",
		rel.Name, rel.Version, rel.Info.Status, since, rel.Name, namespace)
}
