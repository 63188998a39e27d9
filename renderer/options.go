package renderer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/stages"
)

// DefaultTrackLabel is the pod label that tells production pods from canary pods. It
// lives under our own domain so that it cannot collide with a chart's labels.
const DefaultTrackLabel = "helm-canary.io/track"

// Track label values.
const (
	TrackProduction = "production"
	TrackCanary     = "canary"
)

// Subset names in the DestinationRule, as the product contract fixes them.
const (
	SubsetProduction = "production"
	SubsetCanary     = "canary"
)

// CanarySuffix makes a canary Deployment's name from its production one's.
const CanarySuffix = "-canary"

const (
	helm4FilenameAnnotation = "postrenderer.helm.sh/postrender-filename"
	helmHookAnnotation      = "helm.sh/hook"
)

// Annotations on each canary Deployment: the stage it was rendered at, exactly
// (a release staged in pipeline mode keeps its stage nowhere else), and final's
// first step, when traffic is back on production and the canary pods still run.
// Package canaried reads them back.
const (
	AnnotationStage    = "helm-canary.io/stage"
	AnnotationDraining = "helm-canary.io/draining"
	// AnnotationClusterDomain records a cluster domain other than cluster.local
	// that the hosts were compared in, for readers of a pipeline's release (status,
	// route), whose values do not keep the setting.
	AnnotationClusterDomain = "helm-canary.io/cluster-domain"
)

// Options is what one render needs. The CLI binds its flags onto these fields.
type Options struct {
	// Stage to render. The zero value means stable.
	Stage stages.Stage
	// ProductionManifest is a manifest previously produced by Render (typically the
	// release's deployed manifest). Its Deployments' pod templates pin production at
	// every stage up to 100. Empty means production is what the chart renders now.
	ProductionManifest []byte
	// Workloads names the Deployments to canary. Empty means every Deployment that a
	// Service selects.
	Workloads []string
	// CanaryReplicas overrides the canary's replica count (default: production's).
	CanaryReplicas *int32
	// TrackLabel is the pod label key that separates production from canary pods.
	TrackLabel string
	// Draining, with stage final, keeps the canary pods running while traffic is
	// already back on production: final's first step (hazard 3).
	Draining bool
	// PerWorkload overrides the settings above for single Deployments, by name:
	// workloads in one release can be at different stages.
	PerWorkload map[string]WorkloadOptions
	// Mesh is "istio" (default) or "asm".
	Mesh string
	// Ingress is the gateway namespace and selector for user percentages
	// (default istio-system, istio=ingressgateway).
	Ingress Ingress
	// ForceStateful canaries the named workloads even when they are stateful (a
	// ReadWriteOnce claim, strategy Recreate); without it they are refused.
	ForceStateful bool
	// Part is the part of the stream to write: all of it (default), only the
	// workloads, or only the mesh's routing objects (see Part).
	Part Part
	// Namespace is the release's namespace (Helm's --namespace), where objects
	// without one are applied; "" when unknown (a post-renderer is not told it), and
	// then "default" names what needs one. The objects helm-canary puts in the shared
	// gateway namespace, and the user tag headers, carry it, so that two teams'
	// Deployments of one name do not collide there. Hosts are compared with it (an
	// object's own metadata.namespace wins): with it unknown, a route to a host
	// that names a namespace (cart-api.other-team.svc.cluster.local) is never taken
	// for this release's Service, so another team's routes are not rewritten to
	// subsets it does not have; a chart's DestinationRule or VirtualService for such
	// a host is refused, since only the namespace tells whether to split it in place
	// or leave it alone.
	Namespace string
	// ClusterDomain is the cluster's DNS domain (kubelet's clusterDomain), default
	// cluster.local: name.namespace.svc.<domain> names a Service.
	ClusterDomain string
}

// WorkloadOptions are one workload's own settings; zero fields fall back to the
// release-wide ones.
type WorkloadOptions struct {
	Stage          stages.Stage
	Draining       bool
	CanaryReplicas *int32
	// Match, Sticky, UserPercent, Mirror and Gateway are the routing extras of
	// Workload, Match already parsed into Istio's type.
	Match       []*networking.HTTPMatchRequest
	Sticky      *Sticky
	UserPercent *UserPercent
	Mirror      *Mirror
	Gateway     *Gateway
	// ForceStateful: canary it although it is stateful.
	ForceStateful bool
	// KeepVersionLabels: the canary's pods keep the chart's version labels.
	KeepVersionLabels bool
}

// forceStateful reports whether a stateful Deployment may be canaried.
func (o Options) forceStateful(name string) bool {
	return o.ForceStateful || o.PerWorkload[name].ForceStateful
}

// forWorkload resolves the settings of one Deployment.
func (o Options) forWorkload(name string) WorkloadOptions {
	w := o.PerWorkload[name]
	if w.Stage.IsZero() {
		w.Stage = o.stage()
		w.Draining = w.Draining || o.Draining
	}
	if w.CanaryReplicas == nil {
		w.CanaryReplicas = o.CanaryReplicas
	}
	return w
}

// Unpinned names a stage this render would put on some workload other than stable,
// or returns false when all of them are at stable. Without a production manifest,
// every such stage runs the rendered pod template as production (or, at final,
// production is the render anyway, but the transition went unchecked).
func (o Options) Unpinned() (stages.Stage, bool) {
	if s := o.stage(); s != stages.Stable {
		return s, true
	}
	names := make([]string, 0, len(o.PerWorkload))
	for name := range o.PerWorkload {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if s := o.PerWorkload[name].Stage; !s.IsZero() && s != stages.Stable {
			return s, true
		}
	}
	return stages.Stage{}, false
}

func (o Options) trackLabel() string {
	if o.TrackLabel == "" {
		return DefaultTrackLabel
	}
	return o.TrackLabel
}

func (o Options) stage() stages.Stage {
	if o.Stage.IsZero() {
		return stages.Stable
	}
	return o.Stage
}

// Config is the YAML shape of the settings, the same as the release values' canary:
// block, so that `helm get values` output can be fed back with --config.
type Config struct {
	Stage          string              `yaml:"stage,omitempty" json:"stage,omitempty"`
	TrackLabel     string              `yaml:"trackLabel,omitempty" json:"trackLabel,omitempty"`
	CanaryReplicas *int32              `yaml:"canaryReplicas,omitempty" json:"canaryReplicas,omitempty"`
	Workloads      map[string]Workload `yaml:"workloads,omitempty" json:"workloads,omitempty"`
	Draining       bool                `yaml:"draining,omitempty" json:"draining,omitempty"`
	// Mesh is "istio" (default) or "asm": Alibaba ASM gets its own hash-tagging
	// plugin and header propagation objects for user percentages.
	Mesh string `yaml:"mesh,omitempty" json:"mesh,omitempty"`
	// Ingress locates the gateway filter for user percentages.
	Ingress *Ingress `yaml:"ingress,omitempty" json:"ingress,omitempty"`
	// Part renders only the workloads or only the mesh's routing objects (a
	// pipeline or GitOps application per cluster); "" or all: everything.
	Part string `yaml:"part,omitempty" json:"part,omitempty"`
	// MeshCluster puts the routing objects in another cluster, as a companion
	// release (helm canary only; render and the library chart take Part).
	MeshCluster *MeshCluster `yaml:"meshCluster,omitempty" json:"meshCluster,omitempty"`
	// ClusterDomain is the cluster's DNS domain, when not cluster.local.
	ClusterDomain string `yaml:"clusterDomain,omitempty" json:"clusterDomain,omitempty"`
	// Analysis holds `helm canary rollout`'s settings and Rollout its progress,
	// kept with the release; the renderer does not read them (see analysis/).
	Analysis map[string]any `yaml:"analysis,omitempty" json:"analysis,omitempty"`
	Rollout  map[string]any `yaml:"rollout,omitempty" json:"rollout,omitempty"`
}

// MeshCluster is where the mesh's configuration lives when it is not the release's
// cluster: Alibaba ASM's control plane, Istio's config cluster (primary-remote,
// external control plane). Empty fields take their defaults: the current context
// of Kubeconfig, the companion release <release>-mesh in the release's namespace.
type MeshCluster struct {
	Kubeconfig string `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty"`
	Context    string `yaml:"context,omitempty" json:"context,omitempty"`
	Release    string `yaml:"release,omitempty" json:"release,omitempty"`
	Namespace  string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
}

// Workload holds the settings of one canaried Deployment. Naming a Deployment under
// workloads: targets it, as --workload does; a stage here overrides the release's.
type Workload struct {
	Stage          string `yaml:"stage,omitempty" json:"stage,omitempty"`
	Draining       bool   `yaml:"draining,omitempty" json:"draining,omitempty"`
	CanaryReplicas *int32 `yaml:"canaryReplicas,omitempty" json:"canaryReplicas,omitempty"`
	// Match lists Istio HTTPMatchRequests; matching requests go to the canary at
	// every live stage, ahead of the weighted route.
	Match []map[string]any `yaml:"match,omitempty" json:"match,omitempty"`
	// Sticky keeps a user who reached the canary on it, with a cookie.
	Sticky *Sticky `yaml:"sticky,omitempty" json:"sticky,omitempty"`
	// UserPercent makes the stage weight a share of users, by a header's value.
	UserPercent *UserPercent `yaml:"userPercent,omitempty" json:"userPercent,omitempty"`
	// Mirror shadows a share of production traffic to the canary.
	Mirror *Mirror `yaml:"mirror,omitempty" json:"mirror,omitempty"`
	// Gateway binds the VirtualService to an Istio Gateway as well as the mesh.
	Gateway *Gateway `yaml:"gateway,omitempty" json:"gateway,omitempty"`
	// ForceStateful canaries a stateful Deployment (a ReadWriteOnce claim, strategy
	// Recreate), which is refused otherwise.
	ForceStateful bool `yaml:"forceStateful,omitempty" json:"forceStateful,omitempty"`
	// KeepVersionLabels keeps the chart's version labels on the canary's pods, for a
	// selector outside the release that reads one (see VersionLabels).
	KeepVersionLabels bool `yaml:"keepVersionLabels,omitempty" json:"keepVersionLabels,omitempty"`
}

// Sticky: the canary's responses set a cookie, and requests carrying it go to the
// canary; a new canary version gets a new cookie value.
type Sticky struct {
	Cookie string `yaml:"cookie" json:"cookie"`
	MaxAge int    `yaml:"maxAge,omitempty" json:"maxAge,omitempty"`
}

// UserPercent: the ingress gateway hashes Header's value once per request into a
// bucket 0..99 and tags the request (TagHeader: canary or production) for this
// workload; the workload's routes match the tag.
type UserPercent struct {
	Header    string `yaml:"header" json:"header"`
	TagHeader string `yaml:"tagHeader,omitempty" json:"tagHeader,omitempty"`
}

// Mirror: Percent of the traffic on the weighted route is copied to the canary.
type Mirror struct {
	Percent float64 `yaml:"percent" json:"percent"`
}

// Gateway: the VirtualService also serves Hosts on this Istio Gateway; with Create,
// the Gateway itself is rendered (Port, Selector).
type Gateway struct {
	Name     string            `yaml:"name" json:"name"`
	Hosts    []string          `yaml:"hosts,omitempty" json:"hosts,omitempty"`
	Create   bool              `yaml:"create,omitempty" json:"create,omitempty"`
	Port     int               `yaml:"port,omitempty" json:"port,omitempty"`
	Selector map[string]string `yaml:"selector,omitempty" json:"selector,omitempty"`
}

// Ingress is where the user-percentage filter runs: the ingress gateway's
// namespace and pod labels.
type Ingress struct {
	Namespace string            `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	Selector  map[string]string `yaml:"selector,omitempty" json:"selector,omitempty"`
}

// ParseConfig reads a Config from YAML. It accepts either the canary: block itself or
// a whole values file that has one. Unknown keys are errors, so a misspelt setting is
// not silently ignored.
func ParseConfig(data []byte) (Config, error) {
	var probe map[string]any
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return Config{}, fmt.Errorf("config is not valid YAML: %w", err)
	}
	if block, ok := probe["canary"]; ok {
		inner, err := yaml.Marshal(block)
		if err != nil {
			return Config{}, fmt.Errorf("config canary: block: %w", err)
		}
		data = inner
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err.Error() != "EOF" {
		return Config{}, fmt.Errorf("config: %w (known keys: stage, trackLabel, canaryReplicas, workloads, draining, mesh, ingress, part, meshCluster, clusterDomain, analysis, rollout)", err)
	}
	return c, nil
}

// Apply fills unset Options fields from the config; flags set on the command line
// win because the caller applies them afterwards.
func (c Config) Apply(o *Options) error {
	if c.Stage != "" {
		s, err := stages.Parse(c.Stage)
		if err != nil {
			return fmt.Errorf("config stage: %w", err)
		}
		o.Stage = s
	}
	if c.TrackLabel != "" {
		o.TrackLabel = c.TrackLabel
	}
	o.Mesh = c.Mesh
	if c.ClusterDomain != "" {
		o.ClusterDomain = c.ClusterDomain
	}
	if c.Ingress != nil {
		o.Ingress = *c.Ingress
	}
	o.Draining = c.Draining
	part, err := ParsePart(c.Part)
	if err != nil {
		return fmt.Errorf("config %w", err)
	}
	o.Part = part
	if c.CanaryReplicas != nil {
		o.CanaryReplicas = c.CanaryReplicas
	}
	if len(c.Workloads) > 0 {
		names := make([]string, 0, len(c.Workloads))
		for name := range c.Workloads {
			names = append(names, name)
		}
		sort.Strings(names)
		o.Workloads = names
		for _, name := range names {
			w := c.Workloads[name]
			wo := WorkloadOptions{Draining: w.Draining, CanaryReplicas: w.CanaryReplicas,
				Sticky: w.Sticky, UserPercent: w.UserPercent, Mirror: w.Mirror, Gateway: w.Gateway,
				ForceStateful: w.ForceStateful, KeepVersionLabels: w.KeepVersionLabels}
			for i, m := range w.Match {
				match, err := parseMatch(m)
				if err != nil {
					return fmt.Errorf("config workloads.%s.match[%d]: %w", name, i, err)
				}
				wo.Match = append(wo.Match, match)
			}
			if w.Stage != "" {
				s, err := stages.Parse(w.Stage)
				if err != nil {
					return fmt.Errorf("config workloads.%s.stage: %w", name, err)
				}
				wo.Stage = s
			}
			if !wo.Stage.IsZero() || wo.Draining || wo.CanaryReplicas != nil || wo.Match != nil || wo.Sticky != nil ||
				wo.UserPercent != nil || wo.Mirror != nil || wo.Gateway != nil || wo.ForceStateful || wo.KeepVersionLabels {
				if o.PerWorkload == nil {
					o.PerWorkload = map[string]WorkloadOptions{}
				}
				o.PerWorkload[name] = wo
			}
		}
	}
	return nil
}

func (o Options) validate() error {
	if o.Draining && !o.stage().CanDrain() {
		return fmt.Errorf("draining (canary pods up, no traffic) is final's first step or stage 0's warm-up; it does not apply to stage %s", o.stage())
	}
	if o.CanaryReplicas != nil && *o.CanaryReplicas < 0 {
		return fmt.Errorf("canary replicas %d: must be 0 or more", *o.CanaryReplicas)
	}
	if o.Mesh != "" && o.Mesh != "istio" && o.Mesh != "asm" {
		return fmt.Errorf("mesh %q: use istio or asm", o.Mesh)
	}
	if _, err := ParsePart(string(o.Part)); err != nil {
		return err
	}
	for name, w := range o.PerWorkload {
		if w.Sticky != nil && w.Sticky.Cookie == "" {
			return fmt.Errorf("workload %s: sticky needs a cookie name", name)
		}
		if w.Sticky != nil && !isToken(w.Sticky.Cookie) {
			return fmt.Errorf("workload %s: sticky.cookie %q is not a cookie name (RFC 6265: letters, digits and %s; no spaces, '=', ';' or attributes): name the cookie only, helm-canary writes its value, Path and Max-Age",
				name, w.Sticky.Cookie, tokenPunctuation)
		}
		if w.Sticky != nil && w.Sticky.MaxAge < 0 {
			return fmt.Errorf("workload %s: sticky.maxAge %d must be 0 (a session cookie) or more seconds", name, w.Sticky.MaxAge)
		}
		for i, m := range w.Match {
			if err := checkRegexes(m); err != nil {
				return fmt.Errorf("workload %s: match[%d].%w", name, i, err)
			}
		}
		if w.UserPercent != nil && w.UserPercent.Header == "" {
			return fmt.Errorf("workload %s: userPercent needs the header that identifies a user", name)
		}
		if w.UserPercent != nil && !isToken(w.UserPercent.Header) {
			return fmt.Errorf("workload %s: userPercent.header %q is not an HTTP header name (RFC 7230 token: letters, digits and %s)", name, w.UserPercent.Header, tokenPunctuation)
		}
		if w.UserPercent != nil && w.UserPercent.TagHeader != "" && !isToken(w.UserPercent.TagHeader) {
			return fmt.Errorf("workload %s: userPercent.tagHeader %q is not an HTTP header name (RFC 7230 token: letters, digits and %s)", name, w.UserPercent.TagHeader, tokenPunctuation)
		}
		if w.Mirror != nil && (w.Mirror.Percent < 0 || w.Mirror.Percent > 100) {
			return fmt.Errorf("workload %s: mirror percent %v must be between 0 and 100", name, w.Mirror.Percent)
		}
		if w.Gateway != nil && w.Gateway.Name == "" {
			return fmt.Errorf("workload %s: gateway needs a name", name)
		}
		if w.Draining && !o.forWorkload(name).Stage.CanDrain() {
			return fmt.Errorf("workload %s: draining (canary pods up, no traffic) is final's first step or stage 0's warm-up; it does not apply to stage %s", name, o.forWorkload(name).Stage)
		}
		if w.CanaryReplicas != nil && *w.CanaryReplicas < 0 {
			return fmt.Errorf("workload %s: canary replicas %d: must be 0 or more", name, *w.CanaryReplicas)
		}
	}
	if o.ClusterDomain != "" && !isDomain(o.ClusterDomain) {
		return fmt.Errorf("cluster domain %q is not a DNS domain (lower-case labels of letters, digits and '-', joined by dots, as kubelet's clusterDomain): e.g. cluster.local", o.ClusterDomain)
	}
	key := o.trackLabel()
	if errs := validateLabelKey(key); errs != "" {
		return fmt.Errorf("track label %q: %s", key, errs)
	}
	for _, w := range o.Workloads {
		if strings.TrimSpace(w) == "" {
			return fmt.Errorf("workload name is empty: pass a Deployment name to --workload")
		}
	}
	return nil
}

// tokenPunctuation is the punctuation an HTTP token may contain besides letters and
// digits (RFC 7230 tchar; RFC 6265 cookie names are the same tokens).
const tokenPunctuation = "!#$%&'*+-.^_`|~"

// isToken reports whether s is an HTTP token: a header or cookie name that cannot
// carry a separator, a space, a quote, a control byte or non-ASCII into the
// headers, the gateway's Lua or Set-Cookie.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(tokenPunctuation, c) >= 0) {
			return false
		}
	}
	return true
}

// isDomain reports whether s is a DNS domain as a cluster's is written: lower-case
// RFC 1123 labels joined by dots, no leading or trailing dot.
func isDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validateLabelKey checks a label key against Kubernetes' rules (optional DNS
// subdomain prefix, then a name of at most 63 characters).
func validateLabelKey(key string) string {
	prefix, name, found := strings.Cut(key, "/")
	if !found {
		name, prefix = prefix, ""
	}
	if found && (prefix == "" || len(prefix) > 253) {
		return "the prefix must be a DNS subdomain"
	}
	if name == "" || len(name) > 63 {
		return "the name part must be 1 to 63 characters"
	}
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || i == len(name)-1 || !(r == '-' || r == '_' || r == '.')) {
			return "the name part must be alphanumeric, '-', '_' or '.', starting and ending alphanumeric"
		}
	}
	for _, r := range prefix {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return "the prefix must be a lower-case DNS subdomain"
		}
	}
	return ""
}

// checkRegexes compiles every regex of a match request as RE2 (Go's regexp is
// RE2's syntax, and what Istio's own validation uses): Envoy refuses a route with an
// invalid one, and until then the route matches nothing.
func checkRegexes(m *networking.HTTPMatchRequest) error {
	check := func(field string, sm *networking.StringMatch) error {
		re, ok := sm.GetMatchType().(*networking.StringMatch_Regex)
		if !ok {
			return nil
		}
		if _, err := regexp.Compile(re.Regex); err != nil {
			return fmt.Errorf("%s.regex %q is not a valid RE2 regular expression: %v", field, re.Regex, err)
		}
		return nil
	}
	for _, f := range []struct {
		field string
		sm    *networking.StringMatch
	}{{"uri", m.GetUri()}, {"scheme", m.GetScheme()}, {"method", m.GetMethod()}, {"authority", m.GetAuthority()}} {
		if err := check(f.field, f.sm); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		field string
		hs    map[string]*networking.StringMatch
	}{{"headers", m.GetHeaders()}, {"queryParams", m.GetQueryParams()}, {"withoutHeaders", m.GetWithoutHeaders()}} {
		field, hs := f.field, f.hs
		names := make([]string, 0, len(hs))
		for k := range hs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if err := check(field+"."+k, hs[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseMatch reads one Istio HTTPMatchRequest written in YAML, with Istio's own
// decoder, so that a misspelt field is an error naming it.
func parseMatch(m map[string]any) (*networking.HTTPMatchRequest, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var match networking.HTTPMatchRequest
	// protojson, not the type's UnmarshalJSON: that one allows unknown fields.
	if err := protojson.Unmarshal(js, &match); err != nil {
		return nil, fmt.Errorf("not an Istio HTTPMatchRequest: %w", err)
	}
	return &match, nil
}
