package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"helm.sh/helm/v3/pkg/cli"

	"github.com/helm-canary/helm-canary/release"
	"github.com/helm-canary/helm-canary/stages"
)

type stageFlags struct {
	release.StageOptions
	canaryReplicas int32
	output         string
	mesh           release.MeshTarget
}

func newStageCmd(settings *cli.EnvSettings) *cobra.Command {
	var f stageFlags
	cmd := &cobra.Command{
		Use:   "stage STAGE RELEASE [CHART]",
		Short: "Move a release to a stage: stable, 10, 90, 100 (any 0..100), swap, final",
		Long: `stage upgrades a release to a stage. The stage is stored in the release's values
(canary: block, see helm get values) and applied with helm-canary as the post-renderer,
production pinned to what runs now so a new version reaches only the canary.

Without CHART the release's chart is reused; -f/--set values are merged over the
release's current values. stable is the rollback: it restores the chart and values of
the last revision that was at stable or final. swap needs the canary at 100 and final
needs swap, unless --force; final moves traffic first, then removes the canary pods,
as two upgrades.`,
		Example: `  helm canary stage stable shop ./chart --install --set image.tag=83
  helm canary stage 10 shop --set image.tag=84
  helm canary stage 90 shop
  helm canary stage 100 shop
  helm canary stage swap shop
  helm canary stage final shop
  helm canary stage stable shop     # rollback, from any stage`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 || len(args) > 3 {
				return usageError{fmt.Errorf("want STAGE RELEASE [CHART], got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f.Stage, f.Release = args[0], args[1]
			if len(args) == 3 {
				f.Chart = args[2]
			}
			// Everything on the command line is checked before the cluster is reached.
			if _, err := stages.Parse(f.Stage); err != nil {
				return usageError{err}
			}
			if f.DrainTime < 0 {
				return usageError{fmt.Errorf("--drain-time %s: must be 0 or more", f.DrainTime)}
			}
			if f.Timeout < 0 {
				return usageError{fmt.Errorf("--timeout %s: must be 0 or more", f.Timeout)}
			}
			if cmd.Flags().Changed("canary-replicas") {
				if f.canaryReplicas < 0 {
					return usageError{fmt.Errorf("--canary-replicas %d: must be 0 or more", f.canaryReplicas)}
				}
				f.CanaryReplicas = &f.canaryReplicas
			}
			if !slices.Contains(release.Formats, f.output) {
				return usageError{fmt.Errorf("-o %s: use one of %s", f.output, strings.Join(release.Formats, ", "))}
			}
			f.Progress = isTerminal(cmd.ErrOrStderr())
			return runStage(cmd, settings, f)
		},
	}
	cmd.SetFlagErrorFunc(stageFlagError)
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.ValueFiles, "values", "f", nil, "values file merged over the release's values (repeatable)")
	fl.StringArrayVar(&f.Values, "set", nil, "value merged over the release's values, key=value (repeatable)")
	fl.StringArrayVar(&f.StringValues, "set-string", nil, "string value merged over the release's values (repeatable)")
	fl.StringVar(&f.Version, "version", "", "chart version (with a repository CHART)")
	fl.BoolVar(&f.Install, "install", false, "install the release if it does not exist (needs CHART)")
	fl.StringArrayVar(&f.Workloads, "workload", nil, "Deployment to canary (repeatable; default: every Deployment a Service selects); kept in the release")
	fl.Int32Var(&f.canaryReplicas, "canary-replicas", 0, "canary replica count (default: production's); kept in the release")
	fl.BoolVar(&f.DryRun, "dry-run", false, "print what would change, object by object, and change nothing")
	fl.BoolVar(&f.Wait, "wait", false, "wait until production and canary have rolled out, showing ready/total replicas")
	fl.DurationVar(&f.Timeout, "timeout", 5*time.Minute, "time to wait for hooks and, with --wait, the rollout")
	fl.BoolVar(&f.DisableHooks, "no-hooks", false, "do not run the chart's hooks (as helm upgrade --no-hooks)")
	fl.BoolVar(&f.Force, "force", false, "allow unsafe transitions (swap before 100, final before swap, new values at swap/final)")
	fl.DurationVar(&f.DrainTime, "drain-time", 5*time.Second, "final: pause between moving traffic to production and removing the canary pods")
	fl.StringVarP(&f.output, "output", "o", "table", "status output after the stage: table, json or yaml")
	addMeshFlags(fl, &f.mesh)
	return cmd
}

// movingClient is the client of the commands that upgrade the release (stage,
// rollback, rollout): every API request bounded by timeout, the plugin's own
// canary-lib at hand, and the mesh cluster if one is named.
func movingClient(cmd *cobra.Command, settings *cli.EnvSettings, timeout time.Duration, mesh release.MeshTarget) (*release.Client, error) {
	c, err := release.New(settings, cmd.ErrOrStderr(), release.WithTimeout(timeout))
	if err != nil {
		return nil, err
	}
	// Helm runs plugins with HELM_PLUGIN_DIR: canary-lib ships there.
	c.Libraries = release.PluginLibraries(os.Getenv("HELM_PLUGIN_DIR"))
	mesh.Timeout = timeout
	c.SetMesh(mesh)
	return c, nil
}

func runStage(cmd *cobra.Command, settings *cli.EnvSettings, f stageFlags) error {
	c, err := movingClient(cmd, settings, f.Timeout, f.mesh)
	if err != nil {
		return err
	}
	res, err := c.Stage(cmd.Context(), f.StageOptions)
	if err != nil {
		return err
	}
	if f.DryRun {
		fmt.Fprint(cmd.OutOrStdout(), res.Diff)
		return nil
	}
	for _, step := range res.Steps {
		fmt.Fprintf(cmd.ErrOrStderr(), "Release %q: %s\n", f.Release, step)
	}
	st, err := c.StatusOf(cmd.Context(), res.Release)
	if err != nil {
		return err
	}
	return st.Write(cmd.OutOrStdout(), f.output)
}

func isTerminal(w any) bool {
	file, ok := w.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// negativeNumber is how pflag reports `stage -1 R`: a shorthand flag named 1.
var negativeNumber = regexp.MustCompile(`unknown shorthand flag: '[0-9]' in (-[0-9][0-9.%]*)`)

// stageFlagError turns a negative stage, read as a flag, into the stage's error.
func stageFlagError(_ *cobra.Command, err error) error {
	if m := negativeNumber.FindStringSubmatch(err.Error()); m != nil {
		return usageError{fmt.Errorf("stage %q: canary weight must be between 0 and 100", m[1])}
	}
	return usageError{err}
}
