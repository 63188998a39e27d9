package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	"k8s.io/client-go/rest"

	"github.com/helm-canary/helm-canary/analysis"
	"github.com/helm-canary/helm-canary/canaried"
	"github.com/helm-canary/helm-canary/stages"
)

// RolloutOptions is `helm canary rollout`. The CLI binds its flags onto these fields.
type RolloutOptions struct {
	Release string
	// Chart and values bring the new version in at the first step, as for stage.
	Chart, Version                   string
	ValueFiles, Values, StringValues []string
	// Settings over the values' canary.analysis: a file, then flags ("" or 0: unset).
	AnalysisFile      string
	Steps             string
	Interval          time.Duration
	Prometheus        string
	PrometheusService string
	BearerTokenFile   string
	CAFile            string
	// Resume continues the rollout stored in the release.
	Resume       bool
	DryRun       bool
	Timeout      time.Duration
	DrainTime    time.Duration
	DisableHooks bool
	// Progress updates the waiting line in place (a terminal).
	Progress bool
}

// Outcome is how a rollout ended.
type Outcome string

const (
	Promoted   Outcome = "promoted"
	Paused     Outcome = "paused"
	RolledBack Outcome = "rolled-back"
	// Held: nothing was promoted and nothing rolled back (Prometheus unreachable,
	// too little traffic, another command moved the release); --resume goes on.
	Held Outcome = "held"
	// Stopped: a pre-rollout webhook failed; nothing was changed.
	Stopped Outcome = "stopped"
	DryRun  Outcome = "dry-run"
)

// RolloutReport is the final report (-o json prints it).
type RolloutReport struct {
	Release   string  `json:"release"`
	Namespace string  `json:"namespace"`
	Outcome   Outcome `json:"outcome"`
	Steps     string  `json:"steps"`
	// Step is the 1-based step the rollout ended at, and its canary weight.
	Step     int    `json:"step"`
	Weight   int    `json:"weight"`
	Stage    string `json:"stage,omitempty"`
	Revision int    `json:"revision,omitempty"`
	Elapsed  string `json:"elapsed"`
	// Message says what happened and what to do next.
	Message string `json:"message"`
	// Failed are the checks that decided a rollback or a hold; Results the last analysis.
	Failed  []analysis.Result `json:"failed,omitempty"`
	Results []analysis.Result `json:"results,omitempty"`
	History []StepRecord      `json:"history,omitempty"`
	// Plan is what --dry-run would do.
	Plan string `json:"plan,omitempty"`
}

// StepRecord is one analysed step.
type StepRecord struct {
	Step     int    `json:"step"`
	Weight   int    `json:"weight"`
	Verdict  string `json:"verdict"`
	Revision int    `json:"revision,omitempty"`
}

// ExitCode is the command's exit code for an outcome: 0 promoted or paused, 1
// rolled back (or stopped by a webhook), 2 held.
func (r *RolloutReport) ExitCode() int {
	switch r.Outcome {
	case RolledBack, Stopped:
		return 1
	case Held:
		return 2
	}
	return 0
}

// UsageError is bad input to a rollout: settings, flags, a rollout already in
// progress. Nothing was changed.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// progress is stored with the release (canary.rollout) at every upgrade, so an
// interrupted or paused rollout resumes where it stood.
type progress struct {
	// Status is running, paused or promoted.
	Status string `json:"status"`
	Steps  string `json:"steps"`
	// Step is the 1-based step the release is at: 1..len(steps), then
	// len(steps)+1 for swap and len(steps)+2 for final.
	Step     int          `json:"step"`
	Failures int          `json:"failures"`
	Results  []storedItem `json:"results"`
	History  []StepRecord `json:"history"`
	Started  string       `json:"started,omitempty"`
	// Settings are the settings the command line gave (--analysis FILE and the
	// flags, steps aside), as JSON, so that --resume goes on with them. A string, not
	// a map: each upgrade merges maps into the previous revision's values, which
	// would keep an earlier rollout's keys.
	Settings string `json:"settings"`
}

// storedItem is a check result as kept in the release: without its query.
type storedItem struct {
	Workload string   `json:"workload"`
	Check    string   `json:"check"`
	Status   string   `json:"status"`
	Value    *float64 `json:"value,omitempty"`
}

func (p progress) values() (map[string]any, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(data, &m)
}

func readProgress(m map[string]any) (progress, bool) {
	if len(m) == 0 {
		return progress{}, false
	}
	data, err := json.Marshal(m)
	if err != nil {
		return progress{}, false
	}
	var p progress
	if json.Unmarshal(data, &p) != nil || p.Status == "" {
		return progress{}, false
	}
	return p, true
}

func stored(rs []analysis.Result) []storedItem {
	out := make([]storedItem, 0, len(rs))
	for _, r := range rs {
		out = append(out, storedItem{Workload: r.Workload, Check: r.Check, Status: string(r.Status), Value: r.Value})
	}
	return out
}

// rollout is one run of the command.
type rollout struct {
	c        *Client
	o        RolloutOptions
	s        analysis.Settings
	steps    analysis.Steps
	q        analysis.Querier
	prog     progress
	report   *RolloutReport
	start    time.Time
	expected int // the newest revision this run made or started from
	targets  []analysis.Target
}

// Rollout walks a release through its steps while its checks pass, then swap and
// final; it rolls back to stable when they fail. An error is returned only when
// the command could not do its job (bad settings: UsageError; the cluster);
// analysis outcomes are in the report (see ExitCode).
func (c *Client) Rollout(ctx context.Context, o RolloutOptions) (*RolloutReport, error) {
	r := &rollout{c: c, o: o, start: time.Now(), report: &RolloutReport{Release: o.Release, Namespace: c.Namespace}}
	deployed, err := c.deployed(o.Release)
	if errors.Is(err, ErrNotFound) {
		return nil, UsageError{fmt.Errorf("%w: a rollout brings a new version to an installed release; install it first: helm canary stage stable %s CHART --install -n %s", err, o.Release, c.Namespace)}
	}
	if err != nil {
		return nil, err
	}
	if last, err := c.last(o.Release); err == nil {
		if last.Info.Status.IsPending() {
			return nil, pendingError(last, c.Namespace)
		}
		r.expected = last.Version
	}
	state, err := readState(deployed.Config)
	if err != nil {
		return nil, err
	}
	stage, err := state.release()
	if err != nil {
		return nil, err
	}
	prog, stored := readProgress(state.Rollout)
	inProgress := stored && prog.Status != "promoted" && stage.Stage != stages.Stable && !(stage.Stage == stages.Final && !stage.Draining)
	switch {
	case inProgress && !o.Resume:
		return nil, UsageError{fmt.Errorf("release %q has a rollout in progress (%s at step %d of %s, stage %s): continue it with `helm canary rollout %s --resume -n %s`, or roll it back with `helm canary rollback %s -n %s`",
			o.Release, prog.Status, prog.Step, prog.Steps, stage.Stage, o.Release, c.Namespace, o.Release, c.Namespace)}
	case o.Resume && !inProgress:
		return nil, UsageError{fmt.Errorf("release %q has no rollout in progress to resume (it is at stage %s): start one with `helm canary rollout %s CHART ...`", o.Release, stage.Stage, o.Release)}
	case o.Resume && (o.Chart != "" || len(o.ValueFiles)+len(o.Values)+len(o.StringValues) > 0 || o.Steps != ""):
		return nil, UsageError{fmt.Errorf("--resume continues the rollout stored in release %q with its version and steps: drop CHART, -f/--set and --steps", o.Release)}
	}

	var started map[string]any
	if inProgress {
		if started, err = prog.settings(); err != nil {
			return nil, fmt.Errorf("release %q's stored rollout: %w", o.Release, err)
		}
	}
	given, err := r.commandLine()
	if err != nil {
		return nil, UsageError{err}
	}
	if r.s, err = r.settings(state.Analysis, started, given); err != nil {
		return nil, UsageError{err}
	}
	r.steps = r.s.Steps
	if inProgress {
		if r.steps, err = analysis.ParseSteps(prog.Steps); err != nil {
			return nil, fmt.Errorf("release %q's stored rollout: %w", o.Release, err)
		}
		r.prog = prog
	} else {
		r.prog = progress{Status: "running", Steps: r.steps.String(), Started: r.start.UTC().Format(time.RFC3339)}
	}
	// Kept with the progress: what --resume started with, and what it overrode.
	if r.prog.Settings, err = storedSettings(mergeValues(started, given)); err != nil {
		return nil, err
	}
	r.report.Steps = r.steps.String()
	if o.DryRun {
		return r.dryRun(ctx)
	}
	if r.q, err = c.prometheus(r.s.Prometheus); err != nil {
		return nil, err
	}
	// Before anything moves: a rollout that cannot see its metrics promotes nothing.
	if _, _, err := r.q.Query(ctx, "vector(1)", time.Now()); err != nil {
		return r.held(stage.Stage.String(), prog.Step, fmt.Sprintf("Prometheus is unreachable (%v); nothing was changed", err)), nil
	}
	if !inProgress {
		r.logf("Rollout of %q: steps %s, every %s, then swap and final.", o.Release, r.steps, r.s.Interval)
		if err := r.s.CallWebhooks(ctx, r.payload("pre-rollout", 0, 0)); err != nil {
			r.report.Outcome, r.report.Message = Stopped, fmt.Sprintf("pre-rollout %v; nothing was changed", err)
			return r.finish(), nil
		}
		return r.walk(ctx, 0, false)
	}
	r.logf("Resuming the rollout of %q: %s at step %d of %s, every %s, metrics from %s.", o.Release, prog.Status, prog.Step, prog.Steps, r.s.Interval, r.s.Prometheus)
	if len(started) > 0 {
		r.logf("Settings: those the rollout started with (stored in the release)%s.", overriding(o))
	}
	r.targets, err = r.targetsOf(deployed)
	if err != nil {
		return nil, err
	}
	switch {
	case prog.Status == "paused":
		return r.walk(ctx, prog.Step, false)
	case prog.Step > len(r.steps):
		return r.promote(ctx, prog.Step == len(r.steps)+1 && stage.Stage == stages.Swap)
	default:
		// The step's weight is live: analyse it again, then go on.
		return r.walk(ctx, prog.Step-1, true)
	}
}

// settings merges the release's canary.analysis, the command line's values
// (-f/--set canary.analysis...), the settings a resumed rollout started with
// (started), and --analysis FILE with the flags (given).
func (r *rollout) settings(stored, started, given map[string]any) (analysis.Settings, error) {
	layers := []map[string]any{stored}
	vals, err := r.c.cliValues(StageOptions{ValueFiles: r.o.ValueFiles, Values: r.o.Values, StringValues: r.o.StringValues})
	if err != nil {
		return analysis.Settings{}, err
	}
	if block, ok := dig(vals, ValuesKey, "analysis").(map[string]any); ok {
		layers = append(layers, block)
	}
	return analysis.Merge(append(layers, started, given)...)
}

// commandLine is the settings layer of --analysis FILE and the flags over it.
func (r *rollout) commandLine() (map[string]any, error) {
	out := map[string]any{}
	if r.o.AnalysisFile != "" {
		data, err := os.ReadFile(r.o.AnalysisFile)
		if err != nil {
			return nil, fmt.Errorf("--analysis: %w", err)
		}
		file, err := analysis.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("--analysis %s: %w", r.o.AnalysisFile, err)
		}
		out = file
	}
	flags := map[string]any{}
	if r.o.Steps != "" {
		flags["steps"] = r.o.Steps
	}
	if r.o.Interval > 0 {
		flags["interval"] = r.o.Interval.String()
	}
	prom := map[string]any{}
	if r.o.Prometheus != "" {
		prom["url"], prom["service"] = r.o.Prometheus, ""
	}
	if r.o.PrometheusService != "" {
		prom["service"], prom["url"] = r.o.PrometheusService, ""
	}
	if r.o.BearerTokenFile != "" {
		prom["bearerTokenFile"] = r.o.BearerTokenFile
	}
	if r.o.CAFile != "" {
		prom["caFile"] = r.o.CAFile
	}
	if len(prom) > 0 {
		flags["prometheus"] = prom
	}
	return mergeValues(out, flags), nil
}

// storedSettings is a settings layer as progress keeps it; the steps are kept
// on their own (progress.Steps).
func storedSettings(layer map[string]any) (string, error) {
	layer = deepCopy(layer)
	delete(layer, "steps")
	if len(layer) == 0 {
		return "", nil
	}
	data, err := json.Marshal(layer)
	return string(data), err
}

func (p progress) settings() (map[string]any, error) {
	if p.Settings == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(p.Settings), &m); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return m, nil
}

// overriding names the settings given to --resume, which go over the stored ones.
func overriding(o RolloutOptions) string {
	var given []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"--analysis", o.AnalysisFile != ""}, {"--interval", o.Interval > 0}, {"--prometheus", o.Prometheus != ""},
		{"--prometheus-service", o.PrometheusService != ""}, {"--prometheus-bearer-token-file", o.BearerTokenFile != ""},
		{"--prometheus-ca-file", o.CAFile != ""},
	} {
		if f.set {
			given = append(given, f.name)
		}
	}
	if len(given) == 0 {
		return ""
	}
	return "; " + strings.Join(given, ", ") + " given now override them"
}

// prometheus reaches Prometheus by URL, or through the API server's service
// proxy with the kube credentials a CI job already has.
func (c *Client) prometheus(p analysis.PrometheusSettings) (analysis.Querier, error) {
	switch {
	case p.URL != "":
		return analysis.NewPrometheusURL(p)
	case p.Service != "":
		ref, err := analysis.ParseService(p.Service)
		if err != nil {
			return nil, UsageError{err}
		}
		rc, err := c.Settings.RESTClientGetter().ToRESTConfig()
		if err != nil {
			return nil, err
		}
		rt, err := rest.TransportFor(rc)
		if err != nil {
			return nil, err
		}
		addr := strings.TrimSuffix(rc.Host, "/") + fmt.Sprintf("/api/v1/namespaces/%s/services/%s:%s/proxy", ref.Namespace, ref.Name, ref.Port)
		return analysis.NewPrometheus(addr, http.RoundTripper(rt), "service "+p.Service+" (through the API server's proxy)")
	}
	return nil, UsageError{errors.New("no Prometheus to query: pass --prometheus URL or --prometheus-service NAMESPACE/NAME:PORT, or set canary.analysis.prometheus in the values")}
}

// walk runs the steps from index i (0-based); reanalyse: step i's weight is live
// already (a resumed rollout), so it is only analysed again.
func (r *rollout) walk(ctx context.Context, i int, reanalyse bool) (*RolloutReport, error) {
	for ; i < len(r.steps); i++ {
		step := r.steps[i]
		if step.Pause {
			return r.pause(ctx, i)
		}
		r.report.Step, r.report.Weight = i+1, step.Weight
		if !reanalyse {
			r.prog.Step, r.prog.Failures, r.prog.Status = i+1, 0, "running"
			rel, err := r.stage(ctx, fmt.Sprint(step.Weight), i == 0)
			if err != nil {
				return r.failedUpgrade(ctx, err)
			}
			if r.targets == nil {
				if r.targets, err = r.targetsOf(rel); err != nil {
					return nil, err
				}
			}
		}
		reanalyse = false
		res, done := r.analyse(ctx, i)
		if done != nil {
			return done, nil
		}
		r.prog.Results = stored(res.Results)
		r.prog.History = append(r.prog.History, StepRecord{Step: i + 1, Weight: step.Weight, Verdict: "pass", Revision: r.expected})
		r.report.History = r.prog.History
		r.notify(ctx, "step", fmt.Sprintf("%s: step %d of %s (canary at %d%%) passed its checks", r.o.Release, i+1, r.steps, step.Weight), res.Results)
	}
	return r.promote(ctx, false)
}

// analyse waits an interval and runs the checks until they pass (nil report),
// roll back, or hold (the report to return).
func (r *rollout) analyse(ctx context.Context, i int) (analysis.Analysis, *RolloutReport) {
	step := r.steps[i]
	if err := r.s.CallWebhooks(ctx, r.payload("step", i+1, step.Weight)); err != nil {
		failed := analysis.Result{Check: "webhook", Status: analysis.Fail, Detail: err.Error()}
		return analysis.Analysis{}, r.rollback(ctx, analysis.Analysis{Results: []analysis.Result{failed}})
	}
	inconclusive := 0
	for {
		if err := r.wait(ctx, i); err != nil {
			return analysis.Analysis{}, r.held(fmt.Sprint(step.Weight), i+1, fmt.Sprintf("interrupted while waiting at step %d (%v); the release stays at %d%%: continue with `helm canary rollout %s --resume -n %s`", i+1, err, step.Weight, r.o.Release, r.c.Namespace))
		}
		a, err := r.s.Evaluate(ctx, r.q, r.targets, time.Now())
		if err != nil {
			return a, r.held(fmt.Sprint(step.Weight), i+1, fmt.Sprintf("the checks could not run at step %d (%v); nothing was promoted or rolled back, the canary stays at %d%%: fix it and continue with `helm canary rollout %s --resume -n %s`", i+1, err, step.Weight, r.o.Release, r.c.Namespace))
		}
		r.printResults(i, a)
		r.report.Results = a.Results
		verdict := a.Verdict()
		if verdict == analysis.Inconclusive && r.s.Inconclusive == "fail" {
			verdict = analysis.Fail
		}
		switch verdict {
		case analysis.Pass:
			return a, nil
		case analysis.Fail:
			r.prog.Failures++
			if r.prog.Failures >= r.s.FailureLimit {
				return a, r.rollback(ctx, a)
			}
			r.logf("Step %d: failed analysis %d of %d allowed in a row; checking again after %s.", i+1, r.prog.Failures, r.s.FailureLimit, r.s.Interval)
		case analysis.Inconclusive:
			inconclusive++
			if inconclusive >= r.s.InconclusiveLimit {
				r.report.Failed = a.With(analysis.Inconclusive)
				return a, r.held(fmt.Sprint(step.Weight), i+1, fmt.Sprintf("not promoted: the checks were inconclusive %d times at step %d (%s); the canary stays at %d%%: continue with `helm canary rollout %s --resume -n %s` when it has traffic, or roll back with `helm canary rollback %s -n %s`",
					inconclusive, i+1, describe(r.report.Failed), step.Weight, r.o.Release, r.c.Namespace, r.o.Release, r.c.Namespace))
			}
			r.logf("Step %d: inconclusive (%d of %d); checking again after %s.", i+1, inconclusive, r.s.InconclusiveLimit, r.s.Interval)
		}
	}
}

// wait waits one interval, showing the time left on a terminal.
func (r *rollout) wait(ctx context.Context, i int) error {
	d := time.Duration(r.s.Interval)
	end := time.Now().Add(d)
	line := fmt.Sprintf("Step %d of %s: canary at %d%%, analysing in %s", i+1, r.steps, r.steps[i].Weight, d)
	if !r.o.Progress {
		r.logf("%s (elapsed %s).", line, r.elapsed())
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		left := time.Until(end)
		if left <= 0 {
			if r.o.Progress {
				fmt.Fprintln(r.c.Log)
			}
			return nil
		}
		if r.o.Progress {
			fmt.Fprintf(r.c.Log, "\r\033[KStep %d of %s: canary at %d%%, analysing in %s (elapsed %s)", i+1, r.steps, r.steps[i].Weight, left.Round(time.Second), r.elapsed())
		}
		select {
		case <-ctx.Done():
			if r.o.Progress {
				fmt.Fprintln(r.c.Log)
			}
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}

func (r *rollout) printResults(i int, a analysis.Analysis) {
	for _, res := range a.Results {
		r.logf("  step %d %s %s: %s: %s", i+1, res.Workload, res.Check, res.Status, res.Detail)
	}
}

// stage makes the same upgrade `helm canary stage` makes, with --wait, storing
// the progress with it. The first step brings the new chart and values in.
func (r *rollout) stage(ctx context.Context, stage string, first bool) (*helmrelease.Release, error) {
	if err := r.stillNewest(); err != nil {
		return nil, err
	}
	vals, err := r.prog.values()
	if err != nil {
		return nil, err
	}
	so := StageOptions{Stage: stage, Release: r.o.Release, Wait: true, Timeout: r.o.Timeout, Progress: r.o.Progress, DisableHooks: r.o.DisableHooks, DrainTime: r.o.DrainTime, rollout: vals}
	if first {
		so.Chart, so.Version, so.ValueFiles, so.Values, so.StringValues = r.o.Chart, r.o.Version, r.o.ValueFiles, r.o.Values, r.o.StringValues
	}
	res, err := r.c.Stage(ctx, so)
	if res != nil && res.Release != nil {
		r.expected = res.Release.Version
		r.report.Revision = res.Release.Version
		for _, s := range res.Steps {
			r.logf("Release %q: %s", r.o.Release, s)
		}
	}
	if err != nil {
		return nil, err
	}
	r.report.Stage = stage
	return res.Release, nil
}

// stillNewest: a command that ran between two steps (a rollback, a stage by
// hand) is never overwritten.
func (r *rollout) stillNewest() error {
	last, err := r.c.last(r.o.Release)
	if err != nil {
		return err
	}
	if r.expected != 0 && last.Version != r.expected {
		return errMoved{fmt.Errorf("release %q was changed by another command during the rollout (revision %d, expected %d); the rollout stopped and overwrote nothing: check `helm canary status %s -n %s`", r.o.Release, last.Version, r.expected, r.o.Release, r.c.Namespace)}
	}
	return nil
}

type errMoved struct{ error }

// failedUpgrade: an upgrade or its wait failed. The new version is not healthy
// enough to roll out (its pods never became ready): back to stable, unless the
// release was moved by someone else or the command was interrupted.
func (r *rollout) failedUpgrade(ctx context.Context, err error) (*RolloutReport, error) {
	var moved errMoved
	if errors.As(err, &moved) {
		return r.held(r.report.Stage, r.report.Step, moved.Error()), nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w; the rollout's progress is stored with the release: continue with `helm canary rollout %s --resume -n %s`", err, r.o.Release, r.c.Namespace)
	}
	if r.report.Revision == 0 {
		// Nothing was applied (a refused stage, a chart that does not render).
		return nil, err
	}
	failed := analysis.Result{Check: "rollout", Status: analysis.Fail, Detail: err.Error()}
	return r.rollback(ctx, analysis.Analysis{Results: []analysis.Result{failed}}), nil
}

func (r *rollout) rollback(ctx context.Context, a analysis.Analysis) *RolloutReport {
	r.report.Failed = a.With(analysis.Fail)
	r.report.Outcome = RolledBack
	what := describe(r.report.Failed)
	r.logf("Step %d (canary at %d%%) failed: %s. Rolling back to stable.", r.report.Step, r.report.Weight, what)
	so := StageOptions{Stage: "stable", Release: r.o.Release, Wait: true, Timeout: r.o.Timeout, Progress: r.o.Progress, DisableHooks: r.o.DisableHooks}
	res, err := r.c.Stage(context.WithoutCancel(ctx), so)
	if err != nil {
		r.report.Message = fmt.Sprintf("step %d (canary at %d%%) failed: %s; the rollback to stable failed too: %v; roll back with `helm canary rollback %s -n %s`", r.report.Step, r.report.Weight, what, err, r.o.Release, r.c.Namespace)
	} else {
		r.report.Stage = "stable"
		if res.Release != nil {
			r.report.Revision = res.Release.Version
		}
		r.report.Message = fmt.Sprintf("rolled back to stable: step %d (canary at %d%%) failed: %s", r.report.Step, r.report.Weight, what)
	}
	r.notify(ctx, "rolled-back", r.o.Release+": "+r.report.Message, r.report.Failed)
	return r.finish()
}

func describe(rs []analysis.Result) string {
	var parts []string
	for _, res := range rs {
		if res.Workload == "" {
			// The release's own: a webhook, the rollout of a step.
			parts = append(parts, fmt.Sprintf("%s: %s", res.Check, res.Detail))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s of %s: %s", res.Check, res.Workload, res.Detail))
	}
	return strings.Join(parts, "; ")
}

// pause stores the pause with the release (an upgrade that changes no object)
// and stops.
func (r *rollout) pause(ctx context.Context, i int) (*RolloutReport, error) {
	weight := 0
	for _, s := range r.steps[:i] {
		if !s.Pause {
			weight = s.Weight
		}
	}
	r.prog.Step, r.prog.Status = i+1, "paused"
	if _, err := r.stage(ctx, fmt.Sprint(weight), false); err != nil {
		return r.failedUpgrade(ctx, err)
	}
	r.report.Outcome, r.report.Step, r.report.Weight = Paused, i+1, weight
	r.report.Message = fmt.Sprintf("paused at step %d of %s with the canary at %d%%: continue with `helm canary rollout %s --resume -n %s`, or roll back with `helm canary rollback %s -n %s`",
		i+1, r.steps, weight, r.o.Release, r.c.Namespace, r.o.Release, r.c.Namespace)
	r.notify(ctx, "paused", r.o.Release+": "+r.report.Message, nil)
	return r.finish(), nil
}

// promote runs swap (unless done) and final.
func (r *rollout) promote(ctx context.Context, swapped bool) (*RolloutReport, error) {
	n := len(r.steps)
	r.report.Step, r.report.Weight = n, 100
	if !swapped {
		r.prog.Step, r.prog.Status = n+1, "running"
		if _, err := r.stage(ctx, "swap", false); err != nil {
			return r.failedUpgrade(ctx, err)
		}
	}
	r.prog.Step, r.prog.Status = n+2, "promoted"
	if _, err := r.stage(ctx, "final", false); err != nil {
		var moved errMoved
		if errors.As(err, &moved) || ctx.Err() != nil {
			return r.failedUpgrade(ctx, err)
		}
		// Production already runs the new version: going back is a decision for people.
		return nil, fmt.Errorf("%w; production runs the new version since swap: finish with `helm canary stage final %s -n %s`", err, r.o.Release, r.c.Namespace)
	}
	r.report.Outcome = Promoted
	r.report.Message = fmt.Sprintf("promoted: every step of %s passed; production runs the new version (stage final)", r.steps)
	r.notify(ctx, "promoted", r.o.Release+": "+r.report.Message, nil)
	return r.finish(), nil
}

func (r *rollout) held(stage string, step int, msg string) *RolloutReport {
	r.report.Outcome, r.report.Message = Held, msg
	if stage != "" {
		r.report.Stage = stage
	}
	if step > 0 {
		r.report.Step = step
	}
	r.notify(context.Background(), "held", r.o.Release+": "+msg, r.report.Failed)
	return r.finish()
}

func (r *rollout) finish() *RolloutReport {
	r.report.Elapsed = r.elapsed().String()
	r.report.History = r.prog.History
	return r.report
}

func (r *rollout) elapsed() time.Duration { return time.Since(r.start).Round(time.Second) }

func (r *rollout) logf(format string, args ...any) { fmt.Fprintf(r.c.Log, format+"\n", args...) }

func (r *rollout) payload(phase string, step, weight int) analysis.HookPayload {
	return analysis.HookPayload{Release: r.o.Release, Namespace: r.c.Namespace, Phase: phase, Step: step, Weight: weight}
}

// notify sends an event; a notification that fails is reported and changes nothing.
func (r *rollout) notify(ctx context.Context, event, text string, results []analysis.Result) {
	e := analysis.Event{Release: r.o.Release, Namespace: r.c.Namespace, Event: event, Step: r.report.Step, Weight: r.report.Weight, Text: text, Results: results}
	if err := r.s.SendEvent(context.WithoutCancel(ctx), e); err != nil {
		r.logf("Warning: %v", err)
	}
}

// targetsOf lists the canaried workloads of a revision's manifest.
func (r *rollout) targetsOf(rel *helmrelease.Release) ([]analysis.Target, error) {
	m, err := canaried.Read([]byte(rel.Manifest), r.c.Namespace)
	if err != nil {
		return nil, err
	}
	st, err := readState(rel.Config)
	if err != nil {
		return nil, err
	}
	var out []analysis.Target
	for _, w := range m.Workloads(trackLabel(st.Config)) {
		out = append(out, analysis.Target{Namespace: r.c.Namespace, Workload: w.Name, Canary: w.CanaryName(), Service: w.Service})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("release %q has no canaried Deployment to analyse at revision %d", r.o.Release, rel.Version)
	}
	return out, nil
}

// dryRun prints the plan and the first step's changes, and changes nothing.
func (r *rollout) dryRun(ctx context.Context) (*RolloutReport, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Rollout plan for %q: steps %s, then swap and final; each step waits %s, then checks:\n", r.o.Release, r.steps, r.s.Interval)
	fmt.Fprintf(&b, "  at least %g canary requests in the window (fewer: inconclusive, then %s)\n", *r.s.MinRequests, r.s.Inconclusive)
	if *r.s.SuccessRate > 0 {
		fmt.Fprintf(&b, "  %s >= %g%%\n", analysis.CheckSuccessRate, *r.s.SuccessRate)
	}
	if *r.s.LatencyP99 > 0 {
		fmt.Fprintf(&b, "  %s <= %g ms\n", analysis.CheckLatencyP99, *r.s.LatencyP99)
	}
	if p := r.s.Relative.ErrorRatePoints; p != nil {
		fmt.Fprintf(&b, "  %s: at most %g points over production's\n", analysis.CheckErrorRateDiff, *p)
	}
	if p := r.s.Relative.LatencyRatio; p != nil {
		fmt.Fprintf(&b, "  %s: at most %g times production's p99\n", analysis.CheckLatencyRatio, *p)
	}
	for _, c := range r.s.Checks {
		fmt.Fprintf(&b, "  %s: %s%s\n", c.Name, c.Query, boundsText(c.Min, c.Max))
	}
	fmt.Fprintf(&b, "  %d failed analysis in a row at a step rolls back to stable\n", r.s.FailureLimit)
	first := r.steps[0]
	res, err := r.c.Stage(ctx, StageOptions{Stage: fmt.Sprint(first.Weight), Release: r.o.Release, Chart: r.o.Chart, Version: r.o.Version,
		ValueFiles: r.o.ValueFiles, Values: r.o.Values, StringValues: r.o.StringValues, DryRun: true, Timeout: r.o.Timeout})
	if err != nil {
		return nil, err
	}
	b.WriteString(res.Diff)
	r.report.Outcome, r.report.Plan = DryRun, b.String()
	r.report.Message = "dry run: nothing was changed"
	return r.finish(), nil
}

func boundsText(min, max *float64) string {
	var parts []string
	if min != nil {
		parts = append(parts, fmt.Sprintf("min %g", *min))
	}
	if max != nil {
		parts = append(parts, fmt.Sprintf("max %g", *max))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
