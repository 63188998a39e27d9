package release

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/postrender"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// StageOptions is `helm canary stage`. The CLI binds its flags onto these fields.
type StageOptions struct {
	Stage   string
	Release string
	// Chart, when set, replaces the release's stored chart (a path, repo/name or URL).
	Chart   string
	Version string
	// Command-line values, merged over the release's current values.
	ValueFiles, Values, StringValues []string
	Install                          bool
	Workloads                        []string
	CanaryReplicas                   *int32
	DryRun                           bool
	Wait                             bool
	Timeout                          time.Duration
	Force                            bool
	// DrainTime is the pause between final's two upgrades, for the proxies to take
	// the traffic off the canary before its pods go.
	DrainTime time.Duration
	// Progress shows --wait progress on one updating line (a terminal).
	Progress bool
	// DisableHooks skips the chart's hooks, as helm upgrade --no-hooks does.
	DisableHooks bool
	// rollout is a rollout's progress, stored as canary.rollout with the upgrade.
	rollout map[string]any
}

// StageResult says what a stage command did.
type StageResult struct {
	// Revisions are the revisions created, one per upgrade (final takes two).
	Revisions []int
	// Steps describe the upgrades, in order.
	Steps []string
	// Diff is what --dry-run would change.
	Diff string
	// Release is the revision the command ended on (nil for a dry run).
	Release *helmrelease.Release
}

// Stage moves a release to a stage. A refused command creates no revision.
func (c *Client) Stage(ctx context.Context, o StageOptions) (*StageResult, error) {
	target, err := stages.Parse(o.Stage)
	if err != nil {
		return nil, err
	}
	revs, err := readRevisions(c.cfg.Releases, o.Release)
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("release %q in namespace %q: %w", o.Release, c.Namespace, err)
		if !o.Install || o.Chart == "" {
			return nil, fmt.Errorf("%w: to install it, name a chart and pass --install (helm canary stage %s %s CHART --install)", err, target, o.Release)
		}
		return c.install(ctx, o, target)
	}
	if err != nil {
		return nil, err
	}
	last := revs.Last
	in := planInput{Options: o, Libraries: c.Libraries, Revisions: revs}
	if last.Info.Status.IsPending() {
		if target != stages.Stable || len(o.Workloads) > 0 || o.DryRun {
			return nil, pendingError(last, c.Namespace)
		}
		// The rollback is the recovery, as `helm rollback` is for plain Helm.
		in.RecoverPending = true
	}
	if in.Overrides, err = c.cliValues(o); err != nil {
		return nil, err
	}
	if o.rollout != nil {
		in.Overrides = mergeValues(in.Overrides, map[string]any{ValuesKey: map[string]any{"rollout": o.rollout}})
	}
	if o.Chart != "" {
		if in.Chart, err = c.loadChart(o.Chart, o.Version); err != nil {
			return nil, err
		}
	}
	plan, err := planStage(c.cfg.Releases, in)
	if err != nil {
		return nil, err
	}
	if err := c.prepareMesh(plan); err != nil {
		return nil, err
	}
	if last.Info.Status.IsPending() {
		// Only now that the rollback is planned: a refused command changes nothing.
		if err := c.recoverPending(last); err != nil {
			return nil, err
		}
	}
	if plan.RestoreManifest {
		return c.restore(ctx, o, plan)
	}
	res, err := c.apply(ctx, o, plan)
	if res != nil && c.mesh != nil {
		res.Diff += c.mesh.diff
	}
	return res, err
}

// apply runs a plan's upgrades in order. Before each one it checks that the
// release's newest revision is still the one the plan started from, or the one the
// previous step created: a command that ran in between (a rollback during final's
// drain) is never overwritten.
func (c *Client) apply(ctx context.Context, o StageOptions, plan *stagePlan) (*StageResult, error) {
	res := &StageResult{}
	production := plan.Production
	before := plan.Current.Manifest
	if o.DryRun {
		// What --dry-run compares with: what runs now, hand edits included.
		before = c.asLive(ctx, plan.Current.Manifest)
	}
	expected := plan.Last
	for i, step := range plan.Steps {
		if !o.DryRun {
			if err := c.stillNewest(plan, i, expected); err != nil {
				return res, err
			}
		}
		pr, err := plan.Mode.postRenderer(step.State, production, c)
		if err != nil {
			return nil, err
		}
		rel, err := c.upgradeStep(ctx, o, plan, i, expected, pr)
		if err != nil {
			if i > 0 {
				return res, fmt.Errorf("stage %s, step %d of %d (revision %d is live, %s): %w; run the same command again", plan.Target, i+1, len(plan.Steps), res.Revisions[len(res.Revisions)-1], plan.Steps[i-1].liveNote(), err)
			}
			return nil, err
		}
		if o.DryRun {
			res.Diff += diffManifests(before, rel.Manifest, fmt.Sprintf("stage %s%s", step.Stage, drainingNote(step.Stage, step.Draining)))
		} else {
			expected = rel
			res.Revisions = append(res.Revisions, rel.Version)
			res.Release = rel
			repaired, err := c.repairDrift(ctx, rel)
			if err != nil {
				return res, err
			}
			for _, r := range repaired {
				fmt.Fprintf(c.Log, "Repaired drift: %s had been changed outside the release; its spec is the release's again.\n", r)
			}
			res.Steps = append(res.Steps, fmt.Sprintf("stage %s%s (revision %d)", step.Stage, drainingNote(step.Stage, step.Draining), rel.Version))
			if step.WaitReady && i+1 < len(plan.Steps) {
				// Hazard 2: the next step sends traffic to the canary's new pods, so it
				// waits for them whether or not --wait was given.
				fmt.Fprintln(c.Log, "Canary pods starting with no traffic; waiting until they are ready before traffic moves to them.")
				if err := c.waitRollout(ctx, o, rel.Manifest, trackLabel(step.State.Config)); err != nil {
					return res, fmt.Errorf("stage %s: no traffic moved to the canary, whose pods are not ready (revision %d runs them with no traffic): %w", plan.Target, rel.Version, err)
				}
			} else if o.Wait {
				if err := c.waitRollout(ctx, o, rel.Manifest, trackLabel(step.State.Config)); err != nil {
					return res, err
				}
			}
		}
		production, before = []byte(rel.Manifest), rel.Manifest
		if i+1 < len(plan.Steps) && step.finalDrain() && !o.DryRun && o.DrainTime > 0 {
			fmt.Fprintf(c.Log, "Traffic is on production; waiting %s before the canary pods go.\n", o.DrainTime)
			select {
			case <-time.After(o.DrainTime):
			case <-ctx.Done():
				return res, fmt.Errorf("stage %s interrupted after step %d of %d (revision %d is live, traffic on production): %w; run the same command again", plan.Target, i+1, len(plan.Steps), rel.Version, ctx.Err())
			}
		}
	}
	return res, nil
}

// stillNewest checks, before step i of a plan, that the release's newest revision
// is the expected one: the plan's starting point, or the previous step's revision.
// Helm numbers a release's revisions one after the other, so another command's
// revision is the next number: reading that one revision is the check, where
// reading the newest would decode the whole history again.
func (c *Client) stillNewest(plan *stagePlan, i int, expected *helmrelease.Release) error {
	_, err := c.cfg.Releases.Get(plan.Release, expected.Version+1)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("re-reading release %q before step %d of stage %s: %w", plan.Release, i+1, plan.Target, err)
	}
	// Name the newest revision, which may be newer still.
	last, err := c.cfg.Releases.Last(plan.Release)
	if err != nil {
		return fmt.Errorf("re-reading release %q before step %d of stage %s: %w", plan.Release, i+1, plan.Target, err)
	}
	what := fmt.Sprintf("revision %d (%s", last.Version, last.Info.Status)
	if st, err := readState(last.Config); err == nil {
		what += ", stage " + st.String()
	}
	what += ")"
	if i == 0 {
		return fmt.Errorf("release %q was upgraded by another command at the same time, and this one applied nothing: another operation was in progress and made %s; check `helm canary status %s` and run it again if still needed", plan.Release, what, plan.Release)
	}
	return fmt.Errorf("stage %s stopped after step %d of %d: another command made %s after this command's revision %d; it was not overwritten and nothing more was applied: check `helm canary status %s`",
		plan.Target, i, len(plan.Steps), what, expected.Version, plan.Release)
}

// finalDrain reports whether a step is final's first, for the release or for any
// workload: traffic has left the canary, whose pods go in the next step.
func (p plannedStep) finalDrain() bool {
	if p.State.Stage == stages.Final.String() && p.State.Draining {
		return true
	}
	for _, w := range p.State.Workloads {
		if w.Stage == stages.Final.String() && w.Draining {
			return true
		}
	}
	return false
}

// liveNote says where traffic stands once a step that is not the last has run.
func (p plannedStep) liveNote() string {
	if p.finalDrain() {
		return "traffic already on production"
	}
	return "canary pods up with no traffic to them"
}

func drainingNote(s stages.Stage, d bool) string {
	switch {
	case d && s == stages.Final:
		return ": traffic on production, canary pods still up"
	case d:
		return ": canary pods starting, no traffic to them yet"
	}
	return ""
}

// upgrade runs Helm's upgrade of the release to a chart and values. newest, when
// given, is the release's newest revision as the command read and checked it (see
// stillNewest); Helm's upgrade then takes it instead of reading the whole history
// again (see newestKnown).
func (c *Client) upgrade(ctx context.Context, o StageOptions, newest *helmrelease.Release, ch *chart.Chart, vals map[string]any, pr postrender.PostRenderer) (*helmrelease.Release, error) {
	cfg := c.cfg
	if newest != nil {
		known := *c.cfg
		known.Releases = &storage.Storage{Driver: newestKnown{Driver: c.cfg.Releases.Driver, newest: newest},
			MaxHistory: c.cfg.Releases.MaxHistory, Log: c.cfg.Releases.Log}
		cfg = &known
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = c.Namespace
	// The values are complete: the release's, the command line's and the canary block.
	up.ResetValues = true
	// planStage validated the values against the chart's schema without the
	// canary: block (see validateValues).
	up.SkipSchemaValidation = true
	up.DisableHooks = o.DisableHooks
	if pr != nil {
		up.PostRenderer = pr
	}
	up.Timeout = o.Timeout
	if o.DryRun {
		up.DryRun, up.DryRunOption = true, "server"
	}
	rel, err := up.RunWithContext(ctx, o.Release, ch, vals)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("upgrade of release %q interrupted (%v): Helm marked its revision failed and applied nothing more; run the command again, or roll back with helm canary rollback %s -n %s", o.Release, context.Cause(ctx), o.Release, c.Namespace)
	}
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "already exists") || strings.Contains(msg, "another operation") {
			// Helm's release storage is the lock: another command won the race.
			return nil, fmt.Errorf("release %q was upgraded by another command at the same time, and this one applied nothing (%w): check `helm canary status %s` and run it again if still needed", o.Release, err, o.Release)
		}
		return nil, fmt.Errorf("upgrade of release %q: %w", o.Release, err)
	}
	return rel, nil
}

// newestKnown is Helm's release storage for one upgrade, whose read of the
// release's whole history (Helm's Storage.Last, which decodes every revision) is
// answered with the newest revision the command has already read and checked:
// Helm takes the live revision and the next revision number from it. Every other
// read, and every write, goes to the storage; should another command store that
// revision number first, Helm's Create fails and nothing is applied, as when Helm
// reads the history itself. Helm marks the revision it supersedes on a copy.
type newestKnown struct {
	driver.Driver
	newest *helmrelease.Release
}

func (d newestKnown) Query(labels map[string]string) ([]*helmrelease.Release, error) {
	if len(labels) == 2 && labels["name"] == d.newest.Name && labels["owner"] == "helm" {
		rel := *d.newest
		if rel.Info != nil {
			info := *rel.Info
			rel.Info = &info
		}
		return []*helmrelease.Release{&rel}, nil
	}
	return d.Driver.Query(labels)
}

func (c *Client) install(ctx context.Context, o StageOptions, target stages.Stage) (*StageResult, error) {
	if target == stages.Swap || target == stages.Final {
		if !o.Force {
			return nil, fmt.Errorf("a new release starts at stable or a canary weight, not %s (nothing to promote yet); or pass --force", target)
		}
	}
	ch, err := c.loadChart(o.Chart, o.Version)
	if err != nil {
		return nil, err
	}
	if ch, err = withDependenciesKept(ch); err != nil {
		return nil, err
	}
	vals, err := c.cliValues(o)
	if err != nil {
		return nil, err
	}
	config, err := canaryConfig(vals)
	if err != nil {
		return nil, err
	}
	config.Stage = target.String()
	if o.CanaryReplicas != nil {
		config.CanaryReplicas = o.CanaryReplicas
	}
	if len(o.Workloads) > 0 && config.Workloads == nil {
		config.Workloads = map[string]renderer.Workload{}
	}
	for _, w := range o.Workloads {
		if _, ok := config.Workloads[w]; !ok {
			config.Workloads[w] = renderer.Workload{}
		}
	}
	ms, err := c.useMesh(o.Release, config)
	if err != nil {
		return nil, err
	}
	if ms != nil {
		mc := ms.stored
		config.MeshCluster = &mc
	}
	if vals, err = withCanary(vals, config); err != nil {
		return nil, err
	}
	in := action.NewInstall(c.cfg)
	in.ReleaseName, in.Namespace = o.Release, c.Namespace
	in.DisableHooks = o.DisableHooks
	m := modeFor(ch, vals, config.CanaryReplicas, nil)
	if vals, err = m.values(vals, stages.Step{Stage: target}); err != nil {
		return nil, err
	}
	if err := validateValues(ch, vals); err != nil {
		return nil, fmt.Errorf("release %q: %w", o.Release, err)
	}
	// Validated without the canary: block (see validateValues).
	in.SkipSchemaValidation = true
	pr, err := m.postRenderer(canaryState{config}, nil, c)
	if err != nil {
		return nil, err
	}
	if pr != nil {
		in.PostRenderer = pr
	}
	split := &splitRenderer{inner: pr}
	if ms != nil {
		in.PostRenderer = split
	}
	in.Timeout = o.Timeout
	if o.DryRun {
		in.DryRun, in.DryRunOption = true, "server"
	}
	rel, err := in.RunWithContext(ctx, ch, vals)
	if err != nil {
		return nil, fmt.Errorf("install of release %q: %w", o.Release, err)
	}
	if o.DryRun {
		diff := diffManifests("", rel.Manifest, "install at stage "+target.String())
		if ms != nil {
			diff += diffManifests("", string(split.mesh), fmt.Sprintf("install at stage %s, mesh cluster (%s), release %s", target, ms.where, ms.release))
		}
		return &StageResult{Diff: diff}, nil
	}
	res := &StageResult{Release: rel, Revisions: []int{rel.Version}, Steps: []string{fmt.Sprintf("installed at stage %s (revision %d)", target, rel.Version)}}
	if ms != nil {
		// The pods first, then the routes to them (see mesh.go).
		if _, err := ms.apply(ctx, o, ch, canaryState{config}, split.mesh, o.Release, rel.Version); err != nil {
			return res, fmt.Errorf("release %q is installed in the workload cluster (revision %d, stage %s), but its routing objects' release %q in the mesh cluster (%s) failed: %w; run the same command again (without --install) to finish it",
				o.Release, rel.Version, target, ms.release, ms.where, err)
		}
		res.Steps = append(res.Steps, fmt.Sprintf("routing objects in the mesh cluster (%s): release %s revision %d", ms.where, ms.release, ms.last.Version))
	}
	if o.Wait {
		return res, c.waitRollout(ctx, o, rel.Manifest, trackLabel(config))
	}
	return res, nil
}

// sameChart compares what a release stores of a chart: metadata, templates,
// values, schema and files.
func sameChart(a, b *chart.Chart) bool {
	if a == nil || b == nil || a.Metadata == nil || b.Metadata == nil {
		return false
	}
	if a.Metadata.Name != b.Metadata.Name || a.Metadata.Version != b.Metadata.Version || string(a.Schema) != string(b.Schema) {
		return false
	}
	files := func(fs []*chart.File) map[string]string {
		m := map[string]string{}
		for _, f := range withoutDependenciesFile(fs) {
			m[f.Name] = string(f.Data)
		}
		return m
	}
	if fmt.Sprint(files(a.Templates)) != fmt.Sprint(files(b.Templates)) || fmt.Sprint(files(a.Files)) != fmt.Sprint(files(b.Files)) {
		return false
	}
	// Helm merges dependencies' values (and global) into the chart's when it
	// processes them, so the stored chart has keys the loaded one lacks.
	own := func(c *chart.Chart) string {
		v := map[string]any{}
		for k, x := range c.Values {
			v[k] = x
		}
		delete(v, "global")
		for _, d := range c.Metadata.Dependencies {
			delete(v, d.Name)
			delete(v, d.Alias)
		}
		return fmt.Sprint(v)
	}
	return own(a) == own(b)
}

// missingDependencies lists the dependencies a chart declares, enabled by the
// values (their condition), that the loaded chart does not carry.
func missingDependencies(ch *chart.Chart, values map[string]any) []string {
	loaded := map[string]bool{}
	for _, d := range ch.Dependencies() {
		loaded[d.Name()] = true
	}
	var missing []string
	merged, err := chartutil.CoalesceValues(ch, values)
	if err != nil {
		merged = values
	}
	for _, dep := range ch.Metadata.Dependencies {
		name := dep.Name
		if dep.Alias != "" {
			name = dep.Alias
		}
		if loaded[dep.Name] || loaded[name] || !enabled(dep.Condition, merged) {
			continue
		}
		missing = append(missing, dep.Name)
	}
	return missing
}

// enabled evaluates a dependency condition as Helm does: the first of its
// comma-separated value paths that is set decides; none set means enabled.
func enabled(condition string, values map[string]any) bool {
	for _, path := range strings.Split(condition, ",") {
		path = strings.TrimSpace(path)
		if path == "" {
			continue
		}
		if v, ok := dig(values, strings.Split(path, ".")...).(bool); ok {
			return v
		}
	}
	return true
}

func withoutCanary(values map[string]any) map[string]any {
	out := make(map[string]any, len(values))
	for k, v := range values {
		if k != ValuesKey {
			out[k] = v
		}
	}
	return out
}

func (c *Client) loadChart(ref, version string) (*chart.Chart, error) {
	po := action.ChartPathOptions{Version: version}
	path, err := po.LocateChart(ref, c.Settings)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", ref, err)
	}
	ch, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", ref, err)
	}
	return ch, nil
}

func (c *Client) cliValues(o StageOptions) (map[string]any, error) {
	vo := values.Options{ValueFiles: o.ValueFiles, Values: o.Values, StringValues: o.StringValues}
	vals, err := vo.MergeValues(getter.All(c.Settings))
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return vals, nil
}
