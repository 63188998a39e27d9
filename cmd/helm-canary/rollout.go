package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/cli"

	"github.com/helm-canary/helm-canary/analysis"
	"github.com/helm-canary/helm-canary/release"
)

type rolloutFlags struct {
	release.RolloutOptions
	output string
	mesh   release.MeshTarget
}

func newRolloutCmd(settings *cli.EnvSettings) *cobra.Command {
	var f rolloutFlags
	cmd := &cobra.Command{
		Use:   "rollout RELEASE [CHART]",
		Short: "Promote a new version step by step while its metrics are healthy; roll back when not",
		Long: `rollout brings a new version in at the first canary step, waits for it to roll out,
then at each step waits --interval, runs the checks against Prometheus and moves on
when they pass. After the last step: swap, then final. Every move is the upgrade
helm canary stage makes; the progress is stored with the release at every step.

A failed check (past the failure limit) rolls the release back to stable: exit 1,
with the check, its measured value and threshold, and the step. A pause step stops
with exit 0; --resume continues a paused or interrupted rollout with the settings it
started with (flags given to --resume go over them). Exit 2: bad input,
or the environment (Prometheus unreachable, too little traffic to decide): nothing
is promoted, the rollout holds at its step.

Settings come from the release values' canary.analysis, then --analysis FILE, then
the flags.`,
		Example: `  helm canary rollout shop ./chart --set image.tag=84 --prometheus http://prometheus.monitoring:9090
  helm canary rollout shop --steps 10,pause,50,100 --interval 2m --prometheus-service monitoring/prometheus-server:80
  helm canary rollout shop --resume
  helm canary rollout shop ./chart --set image.tag=85 --analysis analysis.yaml -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{fmt.Errorf("want RELEASE [CHART], got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f.Release = args[0]
			if len(args) == 2 {
				f.Chart = args[1]
			}
			if f.Steps != "" {
				if _, err := analysis.ParseSteps(f.Steps); err != nil {
					return usageError{fmt.Errorf("--%w", err)}
				}
			}
			if f.PrometheusService != "" {
				if _, err := analysis.ParseService(f.PrometheusService); err != nil {
					return usageError{err}
				}
			}
			for name, d := range map[string]time.Duration{"interval": f.Interval, "timeout": f.Timeout, "drain-time": f.DrainTime} {
				if d < 0 {
					return usageError{fmt.Errorf("--%s %s: must be 0 or more", name, d)}
				}
			}
			if f.output != "table" && f.output != "json" {
				return usageError{fmt.Errorf("-o %s: use table or json", f.output)}
			}
			f.Progress = isTerminal(cmd.ErrOrStderr())
			return runRollout(cmd, settings, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.ValueFiles, "values", "f", nil, "values file merged over the release's values (repeatable)")
	fl.StringArrayVar(&f.Values, "set", nil, "value merged over the release's values, key=value (repeatable)")
	fl.StringArrayVar(&f.StringValues, "set-string", nil, "string value merged over the release's values (repeatable)")
	fl.StringVar(&f.Version, "version", "", "chart version (with a repository CHART)")
	fl.StringVar(&f.Steps, "steps", "", "canary weights and pauses, e.g. 10,25,pause,50,100 (default "+analysis.DefaultSteps+")")
	fl.DurationVar(&f.Interval, "interval", 0, "time each step runs before its checks, and their window (default 2m)")
	fl.StringVar(&f.AnalysisFile, "analysis", "", "YAML file of canary.analysis settings, over the release values'")
	fl.StringVar(&f.Prometheus, "prometheus", "", "Prometheus URL")
	fl.StringVar(&f.PrometheusService, "prometheus-service", "", "Prometheus through the API server's service proxy: NAMESPACE/NAME:PORT")
	fl.StringVar(&f.BearerTokenFile, "prometheus-bearer-token-file", "", "file with a bearer token for --prometheus")
	fl.StringVar(&f.CAFile, "prometheus-ca-file", "", "CA certificate file to verify --prometheus")
	fl.BoolVar(&f.Resume, "resume", false, "continue the paused or interrupted rollout stored in the release")
	fl.BoolVar(&f.DryRun, "dry-run", false, "print the plan and the first step's changes; change nothing")
	fl.DurationVar(&f.Timeout, "timeout", 5*time.Minute, "time to wait for each step's rollout, hooks and every API request")
	fl.DurationVar(&f.DrainTime, "drain-time", 5*time.Second, "final: pause between moving traffic to production and removing the canary pods")
	fl.BoolVar(&f.DisableHooks, "no-hooks", false, "do not run the chart's hooks")
	fl.StringVarP(&f.output, "output", "o", "table", "final report: table or json")
	addMeshFlags(fl, &f.mesh)
	return cmd
}

func runRollout(cmd *cobra.Command, settings *cli.EnvSettings, f rolloutFlags) error {
	c, err := movingClient(cmd, settings, f.Timeout, f.mesh)
	if err != nil {
		return err
	}
	report, err := c.Rollout(cmd.Context(), f.RolloutOptions)
	if err != nil {
		var ue release.UsageError
		if errors.As(err, &ue) {
			return usageError{err}
		}
		return err
	}
	if err := writeReport(cmd.OutOrStdout(), report, f.output); err != nil {
		return err
	}
	if code := report.ExitCode(); code != 0 {
		return exitCode(code)
	}
	return nil
}

func writeReport(w io.Writer, r *release.RolloutReport, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	if r.Plan != "" {
		fmt.Fprint(w, r.Plan)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RELEASE\tNAMESPACE\tOUTCOME\tSTEP\tWEIGHT\tSTAGE\tREVISION\tELAPSED")
	fmt.Fprintf(tw, "%s\t%s\t%s\t%d of %s\t%d\t%s\t%d\t%s\n", r.Release, r.Namespace, r.Outcome, r.Step, r.Steps, r.Weight, r.Stage, r.Revision, r.Elapsed)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, r.Message)
	if len(r.Results) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKLOAD\tCHECK\tSTATUS\tDETAIL")
		for _, res := range r.Results {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.Workload, res.Check, res.Status, res.Detail)
		}
		return tw.Flush()
	}
	return nil
}
