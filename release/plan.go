package release

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// planInput is what a stage command brings besides the release: its options, the
// command line's values and the chart it names, already read.
type planInput struct {
	Options StageOptions
	// Overrides are the command line's values (-f/--set), merged over the release's.
	Overrides map[string]any
	// Chart is the chart named on the command line (nil: the release's own).
	Chart *chart.Chart
	// Libraries are library charts the plugin ships (canary-lib), by name, to give
	// a stored chart back the dependencies Helm did not store.
	Libraries map[string]*chart.Chart
	// RecoverPending plans a rollback over a pending newest revision, which the
	// command marks failed before applying (see Client.recoverPending).
	RecoverPending bool
	// Revisions are the release's, as the command read them (nil: read them from
	// the storage).
	Revisions *revisions
}

// stagePlan is what one stage command will do, worked out from Helm's release
// storage alone before anything is applied: the upgrades, in order, each with its
// values and stage state. A refusal is an error from planStage, so it never leaves
// a revision behind.
type stagePlan struct {
	Release string
	Target  stages.Stage
	// Last is the newest revision when planned: each step checks that the release
	// has not moved since (see Client.apply).
	Last *helmrelease.Release
	// Current is the revision live now; Base is what the chart and values come from
	// (the last stable revision for a rollback, else Current).
	Current, Base *helmrelease.Release
	Chart         *chart.Chart
	Mode          mode
	// Production pins production's pod templates in the first step; later steps are
	// pinned to the manifest of the step before.
	Production []byte
	Steps      []plannedStep
	// RestoreManifest: the one step re-applies Base's stored manifest (Helm's
	// rollback) instead of rendering the chart: its subcharts are not stored.
	RestoreManifest bool
}

// plannedStep is one Helm upgrade of a plan.
type plannedStep struct {
	stages.Step
	// State is the canary block this step stores.
	State canaryState
	// Values are the upgrade's complete values (Helm's ResetValues).
	Values map[string]any
}

// planStage works out a stage command on a release that exists.
func planStage(store *storage.Storage, in planInput) (*stagePlan, error) {
	o := in.Options
	target, err := stages.Parse(o.Stage)
	if err != nil {
		return nil, err
	}
	if in.Chart, err = withDependenciesKept(in.Chart); err != nil {
		return nil, err
	}
	revs := in.Revisions
	if revs == nil {
		if revs, err = readRevisions(store, o.Release); errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("release %q: %w", o.Release, ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
	}
	last, current := revs.Last, revs.Current
	if last.Info.Status.IsPending() && !in.RecoverPending {
		return nil, pendingError(last, last.Namespace)
	}
	stored, err := readState(current.Config)
	if err != nil {
		return nil, err
	}
	state := stored
	if block, ok := in.Overrides[ValuesKey]; ok {
		// Settings given on the command line (-f/--set canary.workloads...) go over
		// the stored ones; the stage fields are this command's to set.
		merged := mergeValues(map[string]any{ValuesKey: current.Config[ValuesKey]}, map[string]any{ValuesKey: block})
		if state, err = readState(merged); err != nil {
			return nil, err
		}
	}
	// Named workloads move alone (seed 002: teams release independently); without
	// names the whole release moves and per-workload stages are cleared.
	perWorkload := len(o.Workloads) > 0
	if perWorkload || (len(stored.Workloads) == 0 && len(state.Workloads) > 0) {
		state.Workloads = targetsOf(stored, state, current, o.Workloads)
	}
	transition, plans, err := transitions(o, state, current, target)
	if err != nil {
		return nil, err
	}

	base := current
	if transition.Restore {
		// The newest revision that was at stable or final: what a rollback
		// restores. Without one (a release that never was), the current revision.
		stable, err := revs.newest(isStable)
		if err != nil {
			return nil, err
		}
		if stable != nil {
			base = stable
		}
	}
	ch := in.Chart
	if ch == nil {
		// The stored chart, with the dependencies an earlier command kept with the
		// release (see rehydrate.go), or else the plugin's canary-lib.
		if ch, err = withDependenciesRestored(base.Chart); err != nil {
			return nil, err
		}
		ch = withLibraries(ch, in.Libraries)
	}
	// The chart named again unchanged (a release staged before helm-canary kept
	// dependencies needs it named) is no new version.
	changesVersion := (in.Chart != nil && !sameChart(ch, base.Chart)) || len(o.ValueFiles)+len(o.Values)+len(o.StringValues) > 0
	if transition.Promote && changesVersion && !o.Force {
		return nil, fmt.Errorf("stage %s promotes the version the canary runs, so it takes no new chart or values (they would reach production untested): try them at a canary stage first, or pass --force", target)
	}
	vals := mergeValues(withoutCanary(base.Config), in.Overrides)
	if in.Chart == nil {
		if missing := missingDependencies(ch, vals); len(missing) > 0 {
			if p, ok := planRestore(o, in, transition, last, current, base); ok {
				return p, nil
			}
			// Helm keeps no subcharts with a release, and none were kept with this
			// one: rendering the stored chart would drop them, and Helm would delete
			// their objects.
			return nil, fmt.Errorf("release %q's chart depends on %s, which Helm does not store with a release and which were not kept with it (it was last upgraded without helm-canary naming the chart, or they are too large to keep): name the chart (helm canary stage %s %s CHART ...); helm-canary keeps its dependencies with the release from then on if they fit",
				o.Release, strings.Join(missing, ", "), target, o.Release)
		}
	}
	if o.CanaryReplicas != nil {
		state.CanaryReplicas = o.CanaryReplicas
	}

	m, err := planMode(o, in.Overrides, transition, current, ch, vals)
	if err != nil {
		return nil, err
	}

	// Production is pinned to what runs now, so a new version reaches only the
	// canary; a rollback pins it to the last stable revision's.
	production := []byte(current.Manifest)
	if transition.Restore {
		production = []byte(base.Manifest)
	}
	for _, name := range sortedKeys(plans) {
		if plans[name].Restore {
			// This workload alone goes back: pin its production to the pod
			// template of its own last stable revision.
			if production, err = pinToLastStable(revs.newest, name, production); err != nil {
				return nil, err
			}
		}
	}

	p := &stagePlan{Release: o.Release, Target: target, Last: last, Current: current, Base: base, Chart: ch, Mode: m, Production: production}
	for i, step := range transition.Steps {
		st := state.copy()
		if perWorkload {
			for name, wp := range plans {
				ws := wp.Steps[min(i, len(wp.Steps)-1)]
				st.setWorkload(name, ws)
				// One workload's canary warming up holds the next step back.
				step.WaitReady = step.WaitReady || (i < len(wp.Steps) && ws.WaitReady)
			}
		} else {
			st.setRelease(step)
		}
		stepVals, err := st.into(vals)
		if err != nil {
			return nil, err
		}
		if stepVals, err = m.values(stepVals, step); err != nil {
			return nil, err
		}
		if err := validateValues(ch, stepVals); err != nil {
			return nil, fmt.Errorf("release %q: %w", o.Release, err)
		}
		p.Steps = append(p.Steps, plannedStep{Step: step, State: st, Values: stepVals})
	}
	return p, nil
}

// planRestore plans a rollback that re-applies the last stable revision's stored
// manifest (see restore.go): for a release-wide stable without new chart or
// values, when there is a stable revision to go back to.
func planRestore(o StageOptions, in planInput, transition stages.Plan, last, current, base *helmrelease.Release) (*stagePlan, bool) {
	if !transition.Restore || len(o.Workloads) > 0 || len(in.Overrides) > 0 {
		return nil, false
	}
	state, err := readState(base.Config)
	if err != nil || !isStable(base, state.Config) {
		return nil, false
	}
	vals := base.Config
	// A revision staged in pipeline mode keeps its values as they are; the state
	// says stable all the same, for a mesh cluster's companion (see prepareMesh).
	state.setRelease(stages.Step{Stage: stages.Stable})
	if _, staged := base.Config[ValuesKey]; staged {
		if vals, err = state.into(withoutCanary(base.Config)); err != nil {
			return nil, false
		}
	}
	return &stagePlan{Release: o.Release, Target: stages.Stable, Last: last, Current: current, Base: base, Chart: base.Chart,
		Mode: postRenderMode{}, Production: []byte(base.Manifest), RestoreManifest: true,
		Steps: []plannedStep{{Step: stages.Step{Stage: stages.Stable}, State: state, Values: vals}}}, true
}

// transitions checks the move of the release, or of each named workload, and
// spells it out: the release-wide plan has as many steps as the longest.
func transitions(o StageOptions, state canaryState, current *helmrelease.Release, target stages.Stage) (stages.Plan, map[string]stages.Plan, error) {
	plans := map[string]stages.Plan{}
	if len(o.Workloads) == 0 {
		from, err := state.release()
		if err != nil {
			return stages.Plan{}, nil, err
		}
		if _, staged := current.Config[ValuesKey]; !staged {
			// Staged in pipeline mode, or never: the manifest says where it stands.
			if inferred, ok := inferredState(current.Manifest, current.Namespace, trackLabel(state.Config)); ok {
				from = inferred
			}
		}
		plan, err := stages.PlanTransition(from, target, o.Force)
		if err != nil {
			return stages.Plan{}, nil, fmt.Errorf("release %q: %w", o.Release, err)
		}
		return plan, plans, nil
	}
	var plan stages.Plan
	for _, name := range o.Workloads {
		from, err := state.workload(name)
		if err != nil {
			return stages.Plan{}, nil, err
		}
		p, err := stages.PlanTransition(from, target, o.Force)
		if err != nil {
			return stages.Plan{}, nil, fmt.Errorf("release %q, workload %s: %w", o.Release, name, err)
		}
		plans[name] = p
		if len(p.Steps) > len(plan.Steps) {
			plan.Steps = p.Steps
		}
		plan.Promote = plan.Promote || p.Promote
	}
	return plan, plans, nil
}

// planMode picks the mode and, in library mode, refuses a new production image
// before swap and pins production's image to what runs now.
func planMode(o StageOptions, overrides map[string]any, plan stages.Plan, current *helmrelease.Release, ch *chart.Chart, vals map[string]any) (mode, error) {
	if !usesLibrary(ch, vals) {
		return postRenderMode{}, nil
	}
	if dig(overrides, "image") != nil && dig(overrides, canaryKey, "image") == nil {
		// A new top-level image is version N: the canary's own image, written by an
		// earlier stage, gives way to it.
		if cd, ok := vals[canaryKey].(map[string]any); ok {
			delete(cd, "image")
		}
	}
	if dig(overrides, productionKey, "image") != nil && !plan.Promote && !plan.Restore && !o.Force {
		return nil, fmt.Errorf("release %q renders its canary with %s: a new version goes to %s.image, and production's image changes only at swap (or pass --force)", o.Release, libraryChart, canaryKey)
	}
	var pinned map[string]any
	if !plan.Restore && !(o.Force && dig(overrides, productionKey, "image") != nil) {
		pinned = libraryPinned(current.Chart, current.Config)
	}
	return modeFor(ch, vals, o.CanaryReplicas, pinned), nil
}

// copy is a state whose workload map can be changed without changing s's.
func (s canaryState) copy() canaryState {
	out := s
	if s.Workloads != nil {
		out.Workloads = maps.Clone(s.Workloads)
	}
	return out
}

// revisions are a release's revisions as a stage command reads them. Helm's
// storage decodes every revision of a release on each read of its history (its
// Storage.Last too), and helm-canary sets no history limit, so a command reads the
// live revision alone and asks for the next revision number, which a newer
// revision would have (Helm numbers them one after the other). The whole history
// is read, once, by a command that goes back to an earlier revision, or when the
// live revision is not the newest (a failed or pending upgrade, a failed install).
type revisions struct {
	store *storage.Storage
	name  string
	// Last is the newest revision, whatever its status; Current the live one.
	Last, Current *helmrelease.Release
	all           []*helmrelease.Release
}

// readRevisions reads a release's live and newest revision, ErrNotFound when it
// has none.
func readRevisions(store *storage.Storage, name string) (*revisions, error) {
	r := &revisions{store: store, name: name}
	deployed, err := store.Deployed(name)
	switch {
	case err == nil:
		_, err := store.Get(name, deployed.Version+1)
		if errors.Is(err, driver.ErrReleaseNotFound) {
			r.Last, r.Current = deployed, deployed
			return r, nil
		}
		if err != nil {
			return nil, err
		}
	case errors.Is(err, driver.ErrNoDeployedReleases), errors.Is(err, driver.ErrReleaseNotFound):
	default:
		return nil, err
	}
	all, err := r.history()
	if err != nil {
		return nil, err
	}
	r.Last, r.Current = newestOf(all), deployedIn(all)
	return r, nil
}

// walkLimit is how many revisions revisions.newest reads one at a time before it
// reads the whole history at once.
const walkLimit = 8

// newest is the newest live-able revision (deployed or superseded) for which want
// holds, or nil (see newestRevision). The one wanted is usually a few revisions
// back (the stable one before a canary's moves), so it reads them one at a time
// from the newest back, and the whole history at once past walkLimit reads.
func (r *revisions) newest(want func(*helmrelease.Release, renderer.Config) bool) (*helmrelease.Release, error) {
	if r.all == nil {
		v, reads := r.Last.Version, 0
		for ; v >= 1 && reads < walkLimit; v-- {
			rel := r.Last
			switch v {
			case r.Last.Version:
			case r.Current.Version:
				rel = r.Current
			default:
				var err error
				reads++
				if rel, err = r.store.Get(r.name, v); errors.Is(err, driver.ErrReleaseNotFound) {
					continue // pruned
				} else if err != nil {
					return nil, err
				}
			}
			if found := newestRevision([]*helmrelease.Release{rel}, want); found != nil {
				return found, nil
			}
		}
		if v < 1 {
			return nil, nil
		}
	}
	h, err := r.history()
	if err != nil {
		return nil, err
	}
	return newestRevision(h, want), nil
}

// history is every revision of the release, read on first use.
func (r *revisions) history() ([]*helmrelease.Release, error) {
	if r.all != nil {
		return r.all, nil
	}
	h, err := r.store.History(r.name)
	if errors.Is(err, driver.ErrReleaseNotFound) || (err == nil && len(h) == 0) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.all = h
	return h, nil
}

// newestOf is the newest revision of a history, whatever its status: what Helm's
// Storage.Last returns.
func newestOf(history []*helmrelease.Release) *helmrelease.Release {
	var newest *helmrelease.Release
	for _, rel := range history {
		if newest == nil || rel.Version > newest.Version {
			newest = rel
		}
	}
	return newest
}

// deployedIn is the revision that is live: the newest one marked deployed (what
// Helm's Storage.Deployed returns), or the newest if none is (a failed first
// install).
func deployedIn(history []*helmrelease.Release) *helmrelease.Release {
	var deployed []*helmrelease.Release
	for _, rel := range history {
		if rel.Info != nil && rel.Info.Status == helmrelease.StatusDeployed {
			deployed = append(deployed, rel)
		}
	}
	if len(deployed) == 0 {
		return newestOf(history)
	}
	return newestOf(deployed)
}

// isStable reports whether a revision was at stable, or at final after its drain.
func isStable(rel *helmrelease.Release, cfg renderer.Config) bool {
	if _, staged := rel.Config[ValuesKey]; !staged {
		st, ok := inferredState(rel.Manifest, rel.Namespace, trackLabel(cfg))
		return ok && (st.Stage == stages.Stable || st.Stage == stages.Final) && !st.Draining
	}
	return (cfg.Stage == "stable" || cfg.Stage == "final") && !cfg.Draining
}

// newestRevision walks a release's live-able revisions (deployed or superseded),
// newest first, and returns the first one for which want holds, or nil.
func newestRevision(history []*helmrelease.Release, want func(*helmrelease.Release, renderer.Config) bool) *helmrelease.Release {
	sorted := append([]*helmrelease.Release(nil), history...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Version > sorted[j].Version })
	for _, rel := range sorted {
		if rel.Info.Status != helmrelease.StatusDeployed && rel.Info.Status != helmrelease.StatusSuperseded {
			continue
		}
		cfg, err := canaryConfig(rel.Config)
		if err != nil {
			continue
		}
		if want(rel, cfg) {
			return rel
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
