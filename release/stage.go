package release

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	helmrelease "helm.sh/helm/v3/pkg/release"

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
	last, err := c.last(o.Release)
	if errors.Is(err, ErrNotFound) {
		if !o.Install || o.Chart == "" {
			return nil, fmt.Errorf("%w: to install it, name a chart and pass --install (helm canary stage %s %s CHART --install)", err, target, o.Release)
		}
		return c.install(ctx, o, target)
	}
	if err != nil {
		return nil, err
	}
	if last.Info.Status.IsPending() {
		return nil, fmt.Errorf("release %q has an operation in progress (revision %d is %s): wait for it to finish, or fix it with helm rollback", o.Release, last.Version, last.Info.Status)
	}
	current := last
	if last.Info.Status != helmrelease.StatusDeployed {
		if current, err = c.deployed(o.Release); err != nil {
			return nil, err
		}
	}
	config, err := canaryConfig(current.Config)
	if err != nil {
		return nil, err
	}
	stored := config
	overrides, err := c.cliValues(o)
	if err != nil {
		return nil, err
	}
	if block, ok := overrides[ValuesKey]; ok {
		// Settings given on the command line (-f/--set canary.workloads...) go over
		// the stored ones; the stage fields are this command's to set.
		merged := mergeValues(map[string]any{ValuesKey: current.Config[ValuesKey]}, map[string]any{ValuesKey: block})
		if config, err = canaryConfig(merged); err != nil {
			return nil, err
		}
	}
	// Named workloads move alone (seed 002: teams release independently); without
	// names the whole release moves and per-workload stages are cleared.
	perWorkload := len(o.Workloads) > 0
	if perWorkload || (len(stored.Workloads) == 0 && len(config.Workloads) > 0) {
		config.Workloads = c.targets(stored, config, current, o.Workloads)
	}
	plans := map[string]stages.Plan{}
	var plan stages.Plan
	if perWorkload {
		for _, name := range o.Workloads {
			state, err := workloadState(config, name)
			if err != nil {
				return nil, err
			}
			p, err := stages.PlanTransition(state, target, o.Force)
			if err != nil {
				return nil, fmt.Errorf("release %q, workload %s: %w", o.Release, name, err)
			}
			plans[name] = p
			if len(p.Steps) > len(plan.Steps) {
				plan.Steps = p.Steps
			}
			plan.Promote = plan.Promote || p.Promote
		}
	} else {
		state, err := stateOf(config)
		if err != nil {
			return nil, err
		}
		if _, staged := current.Config[ValuesKey]; !staged {
			// Staged in pipeline mode, or never: the manifest says where it stands.
			if inferred, ok := inferredState(current.Manifest, trackLabel(config)); ok {
				state = inferred
			}
		}
		if plan, err = stages.PlanTransition(state, target, o.Force); err != nil {
			return nil, fmt.Errorf("release %q: %w", o.Release, err)
		}
	}

	base := current
	if plan.Restore {
		if base, err = c.lastStable(o.Release, current); err != nil {
			return nil, err
		}
	}
	ch := base.Chart
	if o.Chart != "" {
		if ch, err = c.loadChart(o.Chart, o.Version); err != nil {
			return nil, err
		}
	}
	// The chart named again unchanged (charts with dependencies must be named
	// every time) is no new version.
	changesVersion := (o.Chart != "" && !sameChart(ch, base.Chart)) || len(o.ValueFiles)+len(o.Values)+len(o.StringValues) > 0
	if plan.Promote && changesVersion && !o.Force {
		return nil, fmt.Errorf("stage %s promotes the version the canary runs, so it takes no new chart or values (they would reach production untested): try them at a canary stage first, or pass --force", target)
	}
	vals := mergeValues(withoutCanary(base.Config), overrides)
	if o.Chart == "" {
		if missing := missingDependencies(ch, vals); len(missing) > 0 {
			// Helm keeps no subcharts with a release: rendering the stored chart would
			// drop them, and Helm would delete their objects.
			return nil, fmt.Errorf("release %q's chart depends on %s, and Helm does not store a chart's dependencies with a release: name the chart (helm canary stage %s %s CHART ...)",
				o.Release, strings.Join(missing, ", "), target, o.Release)
		}
	}

	if o.CanaryReplicas != nil {
		config.CanaryReplicas = o.CanaryReplicas
	}

	// In library mode the chart renders the canary objects itself: the stage is
	// set through its values, production's image pinned to what runs now.
	lib := libraryMode(ch, vals)
	var pinnedImage map[string]any
	if lib && dig(overrides, "image") != nil && dig(overrides, canaryKey, "image") == nil {
		// A new top-level image is version N: the canary's own image, written by an
		// earlier stage, gives way to it.
		if cd, ok := vals[canaryKey].(map[string]any); ok {
			delete(cd, "image")
		}
	}
	if lib {
		if dig(overrides, productionKey, "image") != nil && !plan.Promote && !plan.Restore && !o.Force {
			return nil, fmt.Errorf("release %q renders its canary with %s: a new version goes to %s.image, and production's image changes only at swap (or pass --force)", o.Release, libraryChart, canaryKey)
		}
		if !plan.Restore && !(o.Force && dig(overrides, productionKey, "image") != nil) {
			pinnedImage = libraryPinned(current.Chart, current.Config)
		}
	}

	// Production is pinned to what runs now, so a new version reaches only the
	// canary; a rollback pins it to the last stable revision's.
	production := []byte(current.Manifest)
	if plan.Restore {
		production = []byte(base.Manifest)
	}
	for name, p := range plans {
		if p.Restore {
			// This workload alone goes back: pin its production to the pod
			// template of its own last stable revision.
			if production, err = c.pinToLastStable(o.Release, name, production); err != nil {
				return nil, err
			}
		}
	}
	res := &StageResult{}
	before := current.Manifest // what --dry-run compares with: what runs now
	for i, step := range plan.Steps {
		if perWorkload {
			for name, p := range plans {
				ws := p.Steps[min(i, len(p.Steps)-1)]
				w := config.Workloads[name]
				w.Stage, w.Draining = ws.Stage.String(), ws.Draining
				config.Workloads[name] = w
			}
			if config.Stage == "" {
				config.Stage = stages.Stable.String()
			}
		} else {
			config.Stage, config.Draining = step.Stage.String(), step.Draining
			for name, w := range config.Workloads {
				w.Stage, w.Draining = "", false
				config.Workloads[name] = w
			}
		}
		stepVals, err := withCanary(vals, config)
		if err != nil {
			return nil, err
		}
		var pr *postRenderer
		if lib {
			if stepVals, err = libraryStep(stepVals, ch, step, config.CanaryReplicas, pinnedImage); err != nil {
				return nil, err
			}
		} else {
			ropts, err := options(config, production)
			if err != nil {
				return nil, err
			}
			pr = &postRenderer{opts: ropts, log: c.Log}
		}
		rel, err := c.upgrade(ctx, o, ch, stepVals, pr)
		if err != nil {
			if i > 0 {
				return res, fmt.Errorf("stage %s, step %d of %d (revision %d is live, traffic already on production): %w; run the same command again", target, i+1, len(plan.Steps), res.Revisions[len(res.Revisions)-1], err)
			}
			return nil, err
		}
		if o.DryRun {
			res.Diff += diffManifests(before, rel.Manifest, fmt.Sprintf("stage %s%s", step.Stage, drainingNote(step.Draining)))
		} else {
			res.Revisions = append(res.Revisions, rel.Version)
			res.Release = rel
			repaired, err := c.repairDrift(ctx, rel.Manifest)
			if err != nil {
				return res, err
			}
			for _, r := range repaired {
				fmt.Fprintf(c.Log, "Repaired drift: %s had been changed outside the release; its spec is the release's again.\n", r)
			}
			res.Steps = append(res.Steps, fmt.Sprintf("stage %s%s (revision %d)", step.Stage, drainingNote(step.Draining), rel.Version))
			if o.Wait {
				if err := c.waitRollout(ctx, o, rel.Manifest, trackLabel(config)); err != nil {
					return res, err
				}
			}
		}
		production, before = []byte(rel.Manifest), rel.Manifest
		if i+1 < len(plan.Steps) && !o.DryRun && o.DrainTime > 0 {
			fmt.Fprintf(c.Log, "Traffic is on production; waiting %s before the canary pods go.\n", o.DrainTime)
			select {
			case <-time.After(o.DrainTime):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
	}
	return res, nil
}

func drainingNote(d bool) string {
	if d {
		return ": traffic on production, canary pods still up"
	}
	return ""
}

func (c *Client) upgrade(ctx context.Context, o StageOptions, ch *chart.Chart, vals map[string]any, pr *postRenderer) (*helmrelease.Release, error) {
	up := action.NewUpgrade(c.cfg)
	up.Namespace = c.Namespace
	// The values are complete: the release's, the command line's and the canary block.
	up.ResetValues = true
	up.DisableHooks = o.DisableHooks
	if pr != nil {
		up.PostRenderer = pr
	}
	up.Timeout = o.Timeout
	if o.DryRun {
		up.DryRun, up.DryRunOption = true, "server"
	}
	rel, err := up.RunWithContext(ctx, o.Release, ch, vals)
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "already exists") || strings.Contains(msg, "another operation") {
			// Helm's release storage is the lock: another command won the race.
			return nil, fmt.Errorf("release %q was upgraded by another command at the same time, and this one applied nothing (%w): check `helm canary status %s` and run it again if still needed", o.Release, err, o.Release)
		}
		return nil, fmt.Errorf("upgrade of release %q: %w", o.Release, err)
	}
	return rel, nil
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
	if vals, err = withCanary(vals, config); err != nil {
		return nil, err
	}
	in := action.NewInstall(c.cfg)
	in.ReleaseName, in.Namespace = o.Release, c.Namespace
	in.DisableHooks = o.DisableHooks
	if libraryMode(ch, vals) {
		if vals, err = libraryStep(vals, ch, stages.Step{Stage: target}, config.CanaryReplicas, nil); err != nil {
			return nil, err
		}
	} else {
		ropts, err := options(config, nil)
		if err != nil {
			return nil, err
		}
		in.PostRenderer = &postRenderer{opts: ropts, log: c.Log}
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
		return &StageResult{Diff: diffManifests("", rel.Manifest, "install at stage "+target.String())}, nil
	}
	res := &StageResult{Release: rel, Revisions: []int{rel.Version}, Steps: []string{fmt.Sprintf("installed at stage %s (revision %d)", target, rel.Version)}}
	if o.Wait {
		return res, c.waitRollout(ctx, o, rel.Manifest, trackLabel(config))
	}
	return res, nil
}

// lastStable finds the newest revision that was at stable or final: what a
// rollback restores. Without one (a release that never was), the current revision.
func (c *Client) lastStable(name string, current *helmrelease.Release) (*helmrelease.Release, error) {
	rel, err := c.newestRevision(name, func(rel *helmrelease.Release, cfg renderer.Config) bool {
		if _, staged := rel.Config[ValuesKey]; !staged {
			st, ok := inferredState(rel.Manifest, trackLabel(cfg))
			return ok && st.Stage == stages.Stable
		}
		return (cfg.Stage == "stable" || cfg.Stage == "final") && !cfg.Draining
	})
	if rel == nil && err == nil {
		return current, nil
	}
	return rel, err
}

// newestRevision walks a release's live-able revisions (deployed or superseded),
// newest first, and returns the first one for which want holds, or nil.
func (c *Client) newestRevision(name string, want func(*helmrelease.Release, renderer.Config) bool) (*helmrelease.Release, error) {
	history, err := c.cfg.Releases.History(name)
	if err != nil {
		return nil, err
	}
	sort.Slice(history, func(i, j int) bool { return history[i].Version > history[j].Version })
	for _, rel := range history {
		if rel.Info.Status != helmrelease.StatusDeployed && rel.Info.Status != helmrelease.StatusSuperseded {
			continue
		}
		cfg, err := canaryConfig(rel.Config)
		if err != nil {
			continue
		}
		if want(rel, cfg) {
			return rel, nil
		}
	}
	return nil, nil
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
		for _, f := range fs {
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
