package release

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
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
	// Named workloads move alone (seed 002: teams release independently); without
	// names the whole release moves and per-workload stages are cleared.
	perWorkload := len(o.Workloads) > 0
	if perWorkload {
		config.Workloads = c.targets(config, current, o.Workloads)
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
	changesVersion := o.Chart != "" || o.Version != "" || len(o.ValueFiles)+len(o.Values)+len(o.StringValues) > 0
	if plan.Promote && changesVersion && !o.Force {
		return nil, fmt.Errorf("stage %s promotes the version the canary runs, so it takes no chart or values (they would reach production untested): try them at a canary stage first, or pass --force", target)
	}
	if o.Chart != "" {
		if ch, err = c.loadChart(o.Chart, o.Version); err != nil {
			return nil, err
		}
	}
	overrides, err := c.cliValues(o)
	if err != nil {
		return nil, err
	}
	vals := mergeValues(withoutCanary(base.Config), overrides)
	if block, ok := overrides[ValuesKey]; ok {
		// Settings given on the command line (-f/--set canary.workloads...) go over
		// the stored ones; the stage fields are this command's to set.
		merged := mergeValues(map[string]any{ValuesKey: current.Config[ValuesKey]}, map[string]any{ValuesKey: block})
		if config, err = canaryConfig(merged); err != nil {
			return nil, err
		}
	}

	if o.CanaryReplicas != nil {
		config.CanaryReplicas = o.CanaryReplicas
	}

	// In library mode the chart renders the canary objects itself: the stage is
	// set through its values, production's image pinned to what runs now.
	lib := libraryMode(ch, vals)
	var pinnedImage map[string]any
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
			res.Diff += diffManifests(string(production), rel.Manifest, fmt.Sprintf("stage %s%s", step.Stage, drainingNote(step.Draining)))
		} else {
			res.Revisions = append(res.Revisions, rel.Version)
			res.Release = rel
			res.Steps = append(res.Steps, fmt.Sprintf("stage %s%s (revision %d)", step.Stage, drainingNote(step.Draining), rel.Version))
			if o.Wait {
				if err := c.waitRollout(ctx, o, rel.Manifest, trackLabel(config)); err != nil {
					return res, err
				}
			}
		}
		production = []byte(rel.Manifest)
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
	config := renderer.Config{Stage: target.String(), CanaryReplicas: o.CanaryReplicas}
	if len(o.Workloads) > 0 {
		config.Workloads = map[string]renderer.Workload{}
		for _, w := range o.Workloads {
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
		if (cfg.Stage == "stable" || cfg.Stage == "final") && !cfg.Draining {
			return rel, nil
		}
	}
	return current, nil
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
