package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/cli"

	"github.com/helm-canary/helm-canary/release"
	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

type renderFlags struct {
	stage          string
	productionFrom string
	release        string
	workloads      []string
	canaryReplicas int32
	config         string
	trackLabel     string
	forceStateful  bool
	part           string
	clusterDomain  string
}

func newRenderCmd(settings *cli.EnvSettings) *cobra.Command {
	var f renderFlags
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Post-render a manifest stream on stdin for a stage (Helm post-renderer)",
		Long: `render reads a manifest stream on stdin (what Helm hands a post-renderer, or the output
of helm template) and writes it to stdout with each canaried Deployment split into production
and canary, plus the Istio DestinationRule and weighted VirtualService for the stage.

On any error it writes nothing to stdout and exits non-zero.`,
		Example: `  helm template shop ./chart --set image.tag=84 | helm-canary render --stage 10 \
      --production-from <(helm get manifest shop)

  # Helm 3 pipeline: production pinned from the release's deployed manifest
  helm upgrade shop ./chart -n shop --post-renderer "$(command -v helm-canary)" \
      --post-renderer-args render --post-renderer-args --stage=10 \
      --post-renderer-args --release=shop --post-renderer-args --namespace=shop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := f.options(cmd)
			if err != nil {
				return usageError{err}
			}
			// -n/--namespace or HELM_NAMESPACE: the release's namespace names the
			// objects in the shared gateway namespace, and hosts are compared with
			// it. Not given, it is unknown: a host naming a namespace is then left
			// alone (it may be another team's Service of the same name).
			opts.Namespace = explicitNamespace(cmd, settings)
			if f.release != "" {
				// Pipeline mode: pin production to what the release runs now, as
				// `helm canary stage` does.
				c, err := release.New(settings, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				if opts.ProductionManifest, err = c.PipelineProduction(f.release, opts); err != nil {
					return err
				}
				if opts.ProductionManifest != nil && opts.Namespace == "" {
					opts.Namespace = c.Namespace // where the release was found
				}
			}
			in, err := io.ReadAll(cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("reading stdin: %w", err)
			}
			// Written as it goes: a large release is not held twice in memory.
			_, err = renderer.RenderTo(cmd.OutOrStdout(), in, opts, func(w string) {
				fmt.Fprintln(cmd.ErrOrStderr(), "Warning:", w)
			})
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.stage, "stage", "stable", "stage to render: stable, swap, final or a canary weight 0..100 (10, 90, 100)")
	fl.StringVar(&f.productionFrom, "production-from", "", "manifest previously produced by render (e.g. helm get manifest RELEASE) whose Deployments pin production")
	fl.StringVar(&f.release, "release", "", "pin production to this release's deployed manifest, read from the cluster (with -n/--namespace, --kube-context, KUBECONFIG)")
	fl.StringArrayVar(&f.workloads, "workload", nil, "Deployment to canary (repeatable; default: every Deployment a Service selects)")
	fl.Int32Var(&f.canaryReplicas, "canary-replicas", 0, "canary replica count (default: the production replica count)")
	fl.StringVar(&f.config, "config", "", "YAML file with the same settings (the release values' canary: block); flags override it")
	fl.StringVar(&f.trackLabel, "track-label", renderer.DefaultTrackLabel, "pod label key that separates production from canary pods")
	fl.StringVar(&f.part, "part", "all", "write only part of the stream: workloads (everything but the mesh's routing objects), mesh (only VirtualServices, DestinationRules, Gateways, EnvoyFilters, WasmPlugins, ASM's objects: what the mesh's config cluster holds) or all")
	fl.StringVar(&f.clusterDomain, "cluster-domain", "", "the cluster's DNS domain, when not cluster.local: hosts name a Service as NAME.NAMESPACE.svc.DOMAIN (canary.clusterDomain in --config)")
	fl.BoolVar(&f.forceStateful, "force-stateful", false, "canary the --workload Deployments even if stateful (a ReadWriteOnce PersistentVolumeClaim, strategy Recreate), which is refused otherwise")
	return cmd
}

func (f *renderFlags) options(cmd *cobra.Command) (renderer.Options, error) {
	var opts renderer.Options
	if f.config != "" {
		data, err := os.ReadFile(f.config)
		if err != nil {
			return opts, fmt.Errorf("--config: %w", err)
		}
		c, err := renderer.ParseConfig(data)
		if err != nil {
			return opts, fmt.Errorf("--config %s: %w", f.config, err)
		}
		if err := c.Apply(&opts); err != nil {
			return opts, fmt.Errorf("--config %s: %w", f.config, err)
		}
	}
	fl := cmd.Flags()
	if fl.Changed("stage") || opts.Stage.IsZero() {
		s, err := stages.Parse(f.stage)
		if err != nil {
			return opts, fmt.Errorf("--stage: %w", err)
		}
		opts.Stage = s
	}
	if fl.Changed("workload") {
		opts.Workloads = f.workloads
	}
	if fl.Changed("canary-replicas") {
		if f.canaryReplicas < 0 {
			return opts, fmt.Errorf("--canary-replicas %d: must be 0 or more", f.canaryReplicas)
		}
		n := f.canaryReplicas
		opts.CanaryReplicas = &n
	}
	if fl.Changed("track-label") || opts.TrackLabel == "" {
		opts.TrackLabel = f.trackLabel
	}
	if fl.Changed("part") {
		p, err := renderer.ParsePart(f.part)
		if err != nil {
			return opts, fmt.Errorf("--part: %w", err)
		}
		opts.Part = p
	}
	if fl.Changed("cluster-domain") {
		opts.ClusterDomain = f.clusterDomain
	}
	if fl.Changed("force-stateful") {
		opts.ForceStateful = f.forceStateful
	}
	if f.productionFrom != "" && f.release != "" {
		return opts, fmt.Errorf("--production-from and --release both pin production: pass one")
	}
	if f.productionFrom != "" {
		data, err := os.ReadFile(f.productionFrom)
		if err != nil {
			return opts, fmt.Errorf("--production-from: %w", err)
		}
		opts.ProductionManifest = data
	}
	return opts, nil
}
