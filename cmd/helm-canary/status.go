package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/cli"

	"github.com/helm-canary/helm-canary/release"
)

func newStatusCmd(settings *cli.EnvSettings) *cobra.Command {
	var output string
	var mesh release.MeshTarget
	cmd := &cobra.Command{
		Use:   "status RELEASE",
		Short: "Show each canaried workload as live: stage, traffic, replicas, images, drift",
		Long: `status reads the live Deployments and VirtualServices of a release (not only its
stored values) and reports per workload the stage, the traffic split, desired and ready
replicas of production and canary, their images, and any drift between what the release
says and what is live.

With the routing objects in a mesh cluster (--mesh-kubeconfig, --mesh-context) it reads
both clusters. If the mesh cluster cannot be read, it still reports the workloads as
live, says so (traffic unknown; "mesh": {"status": "unreachable", "error": ...} in
-o json) and exits non-zero.`,
		Example: `  helm canary status shop
  helm canary status shop -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("want RELEASE, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(release.Formats, output) {
				return usageError{fmt.Errorf("-o %s: use one of %s", output, strings.Join(release.Formats, ", "))}
			}
			c, err := release.New(settings, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			c.SetMesh(mesh)
			st, err := c.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := st.Write(cmd.OutOrStdout(), output); err != nil {
				return err
			}
			// The report above, and a non-zero exit for scripts.
			return st.MeshErr()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	addMeshFlags(cmd.Flags(), &mesh)
	return cmd
}
