package main

import (
	"io"

	"github.com/spf13/cobra"
)

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "helm-canary",
		Short: "Canary and blue-green releases on Istio for any Helm chart",
		Long: `helm-canary turns any chart's Deployments into a production and a canary Deployment,
routed by an Istio DestinationRule and a weighted VirtualService, stage by stage.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newRenderCmd())
	return root
}
