package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"helm.sh/helm/v3/pkg/cli"
)

func newRollbackCmd(settings *cli.EnvSettings) *cobra.Command {
	stage := newStageCmd(settings)
	cmd := &cobra.Command{
		Use:   "rollback RELEASE [CHART]",
		Short: "Same as: stage stable RELEASE (all traffic and production back to the last stable version)",
		Long: `rollback is stage stable: production back to the version of the last revision at
stable or final, the canary at 0 replicas, all traffic on production. It takes the
same flags as stage.

Without CHART it works for every release: a chart whose dependencies Helm did not
store (subcharts, library charts such as bitnami's common or canary-lib) gets the
last stable revision's stored manifest re-applied, as helm rollback does (with the
routes in a mesh cluster, first the companion revision that went with it there). A revision
left pending by an interrupted command (killed, a crashed runner) is marked failed
first, so rollback is also the recovery.`,
		Example: `  helm canary rollback shop
  helm canary rollback shop --wait --timeout 2m
  helm canary rollback shop ./chart     # re-render the stable values with this chart`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{fmt.Errorf("want RELEASE [CHART], got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return stage.RunE(cmd, append([]string{"stable"}, args...))
		},
	}
	cmd.SetFlagErrorFunc(stageFlagError)
	// The stage command's flags, minus those that mean nothing for stable.
	stage.Flags().VisitAll(func(f *pflag.Flag) {
		switch f.Name {
		case "install", "drain-time", "canary-replicas":
		default:
			cmd.Flags().AddFlag(f)
		}
	})
	return cmd
}
