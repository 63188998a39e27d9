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
		Use:   "rollback RELEASE",
		Short: "Same as: stage stable RELEASE (all traffic and production back to the last stable version)",
		Example: `  helm canary rollback shop
  helm canary rollback shop --wait`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("want RELEASE, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return stage.RunE(cmd, []string{"stable", args[0]})
		},
	}
	// The stage command's flags, minus those that make no sense for a rollback.
	stage.Flags().VisitAll(func(f *pflag.Flag) {
		switch f.Name {
		case "wait", "timeout", "dry-run", "output", "force":
			cmd.Flags().AddFlag(f)
		}
	})
	return cmd
}
