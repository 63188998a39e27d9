package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// commit is set by `make dist` (hack/dist) and the install hook's Go build through
// -ldflags; a plain `go build` in a git checkout gets it from the build info.
var commit = ""

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the commit helm-canary was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "helm-canary %s (commit %s, %s/%s, %s)\n",
				version, buildCommit(), runtime.GOOS, runtime.GOARCH, runtime.Version())
			return err
		},
	}
}

// buildCommit is the commit from -ldflags, else the one Go recorded from the VCS
// (with "-dirty" for uncommitted changes), else "unknown" (a build outside a checkout).
func buildCommit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return "unknown"
	}
	if modified == "true" {
		revision += "-dirty"
	}
	return revision
}
