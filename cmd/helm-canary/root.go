package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/cli"
)

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	// Helm hands a plugin its global flags (-n, --kube-context, --kubeconfig, ...) as
	// HELM_* variables and KUBECONFIG; cli.New reads them, and the same flags on our
	// command line (when run directly, or as a post-renderer) override them.
	settings := cli.New()
	root := &cobra.Command{
		Use:   "helm-canary",
		Short: "Canary and blue-green releases on Istio for any Helm chart",
		Long: `helm-canary turns any chart's Deployments into a production and a canary Deployment,
routed by an Istio DestinationRule and a weighted VirtualService, stage by stage.

Stages: stable, 10, 90, 100 (any canary weight 0..100), swap, final.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	settings.AddFlags(root.PersistentFlags())
	root.AddCommand(newRenderCmd(settings), newStageCmd(settings), newStatusCmd(settings), newRollbackCmd(settings), newRolloutCmd(settings), newRouteCmd(settings), newVersionCmd())
	return root
}

// explicitNamespace is the namespace the user named: -n/--namespace, or
// HELM_NAMESPACE (how Helm hands a plugin its -n). "" when neither says: Helm's
// settings would then fall back to the kubeconfig's namespace or "default", a guess
// that a post-renderer must not compare hosts with, since helm's own -n never
// reaches it.
func explicitNamespace(cmd *cobra.Command, settings *cli.EnvSettings) string {
	if cmd.Flags().Changed("namespace") || os.Getenv("HELM_NAMESPACE") != "" {
		return settings.Namespace()
	}
	return ""
}
