package release

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/cli"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/helm-canary/helm-canary/renderer"
)

// Client reaches one namespace's releases the way the helm CLI does: KUBECONFIG,
// kube context and namespace from the environment Helm gives plugins, or from the
// same flags.
type Client struct {
	Settings  *cli.EnvSettings
	Namespace string
	cfg       *action.Configuration
	// Log receives progress and warnings (the CLI passes stderr).
	Log io.Writer
	// Libraries are the library charts the plugin ships (see PluginLibraries).
	Libraries map[string]*chart.Chart
	// meshTarget is the command line's mesh cluster, mesh the one resolved for the
	// release at hand (see mesh.go).
	meshTarget *MeshTarget
	mesh       *meshSide
}

// Option changes how New connects.
type Option func(*cli.EnvSettings)

// WithTimeout bounds every request to the API server, so that a server that hangs
// cannot hold a command past its --timeout (client-go waits forever by default,
// and Helm's release storage calls take no context).
func WithTimeout(d time.Duration) Option {
	return func(settings *cli.EnvSettings) {
		flags, ok := settings.RESTClientGetter().(*genericclioptions.ConfigFlags)
		if !ok || d <= 0 {
			return
		}
		wrap := flags.WrapConfigFn
		flags.WrapConfigFn = func(config *rest.Config) *rest.Config {
			if wrap != nil {
				config = wrap(config)
			}
			config.Timeout = d
			return config
		}
	}
}

// New connects to the cluster of settings. Options apply before the first request.
func New(settings *cli.EnvSettings, log io.Writer, opts ...Option) (*Client, error) {
	for _, o := range opts {
		o(settings)
	}
	c := &Client{Settings: settings, Namespace: settings.Namespace(), cfg: new(action.Configuration), Log: log}
	debug := func(format string, v ...any) {
		if settings.Debug {
			fmt.Fprintf(log, format+"\n", v...)
		}
	}
	if err := c.cfg.Init(settings.RESTClientGetter(), c.Namespace, os.Getenv("HELM_DRIVER"), debug); err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, nil
}

// ErrNotFound is returned for a release that does not exist in the namespace.
var ErrNotFound = errors.New("release not found")

// last returns the newest revision of a release, whatever its status.
func (c *Client) last(name string) (*helmrelease.Release, error) {
	rel, err := c.cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("release %q in namespace %q: %w", name, c.Namespace, ErrNotFound)
	}
	return rel, err
}

// deployed returns the revision that is live: the deployed one, or the newest if
// none is marked deployed (a failed first install).
func (c *Client) deployed(name string) (*helmrelease.Release, error) {
	rel, err := c.cfg.Releases.Deployed(name)
	if err == nil {
		return rel, nil
	}
	if errors.Is(err, driver.ErrNoDeployedReleases) || errors.Is(err, driver.ErrReleaseNotFound) {
		return c.last(name)
	}
	return nil, err
}

// DeployedManifest is the manifest the release runs now, for pinning production in
// pipeline mode. found is false for a release that does not exist yet.
func (c *Client) DeployedManifest(name string) (manifest []byte, found bool, err error) {
	rel, err := c.deployed(name)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading release %q: %w", name, err)
	}
	return []byte(rel.Manifest), true, nil
}

// ClusterDomain is the cluster DNS domain a release was staged with (its values'
// canary.clusterDomain), "" for the default or a release staged in pipeline mode.
func (c *Client) ClusterDomain(name string) (string, error) {
	rel, err := c.deployed(name)
	if err != nil {
		return "", fmt.Errorf("reading release %q: %w", name, err)
	}
	config, err := canaryConfig(rel.Config)
	return config.ClusterDomain, err
}

// PipelineProduction is the production manifest for `render --release`: the
// release's deployed manifest. A release that is not there is a first install,
// which renders at stable; at any other stage the chart's new pod template would
// become production (version N straight to production), and a typo in --release
// or a post-renderer that did not get --namespace (it does not inherit helm's -n)
// is far likelier than a first install at a canary stage: refused.
func (c *Client) PipelineProduction(name string, opts renderer.Options) ([]byte, error) {
	manifest, found, err := c.DeployedManifest(name)
	if err != nil || found {
		return manifest, err
	}
	if s, unpinned := opts.Unpinned(); unpinned {
		return nil, fmt.Errorf("release %q not found in namespace %q, so production has nothing to be pinned to and stage %s would send the new version straight to production; "+
			"fix --release, or pass the release's namespace with --namespace (a post-renderer does not inherit helm's -n), "+
			"or install at --stage=stable first (or pin explicitly with --production-from)", name, c.Namespace, s)
	}
	return nil, nil
}

func (c *Client) clients() (kubernetes.Interface, dynamic.Interface, error) {
	rc, err := c.Settings.RESTClientGetter().ToRESTConfig()
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	return cs, dyn, err
}

// postRenderer runs the renderer in process as Helm's post-renderer.
type postRenderer struct {
	opts   renderer.Options
	log    io.Writer
	result renderer.Result
}

func (p *postRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	res, err := renderer.Render(in.Bytes(), p.opts)
	if err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(p.log, "Warning:", w)
	}
	p.result = res
	return bytes.NewBuffer(res.Manifest), nil
}
