package renderer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/stages"
)

// Result is a rendered stream plus what the caller may want to tell the user.
type Result struct {
	Manifest []byte
	// Warnings are not errors: for example a Service that selects several Deployments
	// and was therefore left alone by the default workload selection.
	Warnings []string
	// Workloads lists the canaried Deployments, in input order.
	Workloads []WorkloadSummary
}

// WorkloadSummary says what a render did to one Deployment.
type WorkloadSummary struct {
	Name     string   `json:"name"`
	Services []string `json:"services"`
	// ProductionPinned is true when production kept the pod template of the production
	// manifest rather than the one rendered now.
	ProductionPinned bool `json:"productionPinned"`
}

// Render transforms a manifest stream for opts.Stage. On error it returns no
// manifest at all: a caller must never apply half a transformation.
func Render(in []byte, opts Options) (Result, error) {
	r, size, err := prepare(in, opts)
	if err != nil {
		return Result{}, err
	}
	var buf bytes.Buffer
	buf.Grow(size)
	if err := writeDocuments(&docWriter{w: &buf}, r.docs); err != nil {
		return Result{}, err
	}
	out, err := selectPart(buf.Bytes(), opts.Part)
	if err != nil {
		return Result{}, err
	}
	res := r.result()
	res.Manifest = out
	return res, nil
}

// RenderTo is Render writing the manifest to w instead of returning it, so that a
// large release is not held in memory twice, as the documents and as the stream.
// warn, if not nil, gets the warnings before anything is written. When rendering
// fails nothing is written; a failing w can leave part of the manifest written.
func RenderTo(w io.Writer, in []byte, opts Options, warn func(string)) (Result, error) {
	if opts.Part != PartAll {
		// The parts are cut from the whole stream.
		res, err := Render(in, opts)
		if err == nil {
			for _, msg := range res.Warnings {
				if warn != nil {
					warn(msg)
				}
			}
			_, err = w.Write(res.Manifest)
		}
		return res, err
	}
	r, _, err := prepare(in, opts)
	if err != nil {
		return Result{}, err
	}
	res := r.result()
	if warn != nil {
		for _, msg := range res.Warnings {
			warn(msg)
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := writeDocuments(&docWriter{w: bw}, r.docs); err != nil {
		return res, err
	}
	return res, bw.Flush()
}

// prepare runs every step of the transformation and encodes what changed, so
// that nothing can fail once writing starts but the writer; size bounds the output.
func prepare(in []byte, opts Options) (*release, int, error) {
	if err := opts.validate(); err != nil {
		return nil, 0, err
	}
	docs := splitDocuments(in)
	if !hasContent(docs) {
		return nil, 0, fmt.Errorf("no manifests in the input: pipe in the output of `helm template` or let Helm run the post-renderer")
	}
	r := &release{opts: opts, stage: opts.stage(), track: opts.trackLabel(), docs: docs}
	if len(opts.Workloads) > 0 {
		r.explicit = map[string]bool{}
		for _, w := range opts.Workloads {
			r.explicit[w] = true
		}
	}
	for _, step := range r.steps() {
		if err := step(); err != nil {
			return nil, 0, err
		}
	}
	size, err := outputSize(docs)
	if err != nil {
		return nil, 0, err
	}
	return r, size, nil
}

// result is what Render reports besides the manifest.
func (r *release) result() Result {
	res := Result{Warnings: r.warnings}
	for _, w := range r.workloads {
		s := WorkloadSummary{Name: w.name, ProductionPinned: w.pinned}
		for _, svc := range w.services {
			s.Services = append(s.Services, svc.name)
		}
		res.Workloads = append(res.Workloads, s)
	}
	return res
}

// steps is the order of the transformation, in one place. Deployments are the bulk
// of a release, so each one is parsed, split and encoded in one go and only small
// facts about it (names, labels) are kept for the steps after it.
func (r *release) steps() []func() error {
	return []func() error{
		r.pinProduction,      // read production's pod templates
		r.classify,           // parse the routing objects; find the Deployments
		r.indexServices,      // which Service selects which pods
		r.splitDeployments,   // production + canary per Deployment
		r.resolveSharedHosts, // one canary per Service
		r.settleConfigs,      // production's config content, the canary's copies
		r.twinAutoscalers,
		r.routeDestinationRules,
		r.routeVirtualServices,
		r.routeGateways,
		r.replacePrior, // an earlier render's objects give way to this one's
	}
}

// release is the parsed view of one stream that the steps work on.
type release struct {
	opts     Options
	stage    stages.Stage
	track    string
	docs     []*document
	explicit map[string]bool // --workload names; nil selects by Service

	// pinned maps Deployment names to their pod templates in the production manifest,
	// pinnedSelectors to their spec.selector there.
	pinned          map[string]*yaml.RNode
	pinnedSelectors map[string]*yaml.Node

	deploymentDocs []*document
	serviceDocs    []*document
	claimDocs      []*document   // parsed only when a Deployment mounts a claim
	configDocs     []*document   // ConfigMaps and Secrets, parsed when referenced
	deployments    []*deployment // every parsed, non-hook Deployment
	names          []string      // every Deployment name, for error messages
	services       []*service
	index          serviceIndex
	autoscalers    []*document
	vservices      []*document
	destrules      []*document

	workloads []*workload
	warnings  []string
	// priorOf maps the canary Deployments of an earlier render to their production
	// Deployment's name.
	priorOf map[*document]string
	// warnedPorts marks the Services whose ports were reported already.
	warnedPorts map[*service]bool

	// The ConfigMaps and Secrets of the stream and of the production manifest, and
	// those the canaried pod templates read (config.go).
	configIx, prodConfigIx *configIndex
	configs                map[configKey]*config
	configOrder            []*config
	// warnedHosts marks the hosts reported as naming a namespace the render cannot place.
	warnedHosts map[string]bool
	// selectors are the documents besides Deployments and Services that select pods
	// by label (version.go), once read.
	selectors *[]*yaml.RNode
}

// deployment is what the later steps need to know of a Deployment.
type deployment struct {
	doc      *document
	name, ns string
	labels   map[string]string // the rendered pod template's labels
	selector map[string]string // spec.selector.matchLabels
	hook     bool
}

// service is what the steps need to know of a Service.
type service struct {
	doc        *document
	name, ns   string
	selector   map[string]string
	labels     *yaml.Node // metadata.labels, copied onto the routing objects
	namedPorts []string   // targetPorts given by name
	ports      []servicePort
	typ        string // spec.type; "" is ClusterIP
	headless   bool   // spec.clusterIP: None
}

// workload is one canaried Deployment and everything that routes to it.
type workload struct {
	d        *deployment
	name     string
	ns       string // the Deployment's namespace, the release's when it has none
	services []*service
	hpas     []*document
	// pinned is true when production keeps the production manifest's pod template.
	pinned bool
	// labeled is true when the running production pods (per the production manifest)
	// carry the track label, so that the production subset has endpoints.
	labeled bool
	// source and filename point new documents at the Deployment's template file
	// (Helm 3's "# Source:" comment, Helm 4's annotation).
	source, filename string
	canary           *document
	// blocked is why this workload cannot be rendered at this stage, if it stays.
	blocked error
	// WorkloadOptions are this workload's stage and settings.
	WorkloadOptions
	// others are the Deployments besides this one that a Service of it selects.
	others map[*service][]*deployment
	// version names the canary's pod template (its images), for the sticky cookie.
	version string
	// prior is the canary Deployment an earlier render made, when the stream was
	// rendered before; stale are that render's other objects for this workload that
	// this render makes anew if the stage needs them (the autoscaler's twin).
	prior *document
	stale []*document
	// productionLabels are the labels of production's pod template at this stage.
	productionLabels map[string]string
	// configRenames maps the ConfigMaps and Secrets the canary's pod template names
	// to what the canary reads (its copies, config.go).
	configRenames map[configKey]string
	// versions are the version labels the canary's pods carry instead of the
	// rendered ones (version.go).
	versions map[string]string
}

// canaryUp reports whether the workload's canary pods run: every stage but stable
// and final, and final's draining step.
func (w *workload) canaryUp() bool {
	return w.Stage.CanaryUp() || (w.Draining && w.Stage == stages.Final)
}

func hasContent(docs []*document) bool {
	for _, d := range docs {
		if !d.empty() {
			return true
		}
	}
	return false
}

// pinProduction reads the production manifest's Deployments.
func (r *release) pinProduction() error {
	if len(bytes.TrimSpace(r.opts.ProductionManifest)) == 0 {
		return nil
	}
	r.pinned = map[string]*yaml.RNode{}
	docs := splitDocuments(r.opts.ProductionManifest)
	ix, err := r.indexConfigs(docs)
	if err != nil {
		return fmt.Errorf("production manifest: %w", err)
	}
	ix.lastWins = true
	r.prodConfigIx = ix
	for _, d := range docs {
		if d.empty() || (d.kind != "" && d.kind != "Deployment") ||
			(r.explicit != nil && d.name != "" && !r.explicit[d.name]) {
			continue
		}
		n, err := d.parse()
		if err != nil {
			return fmt.Errorf("production manifest: %w", err)
		}
		if n == nil || n.GetKind() != "Deployment" {
			continue
		}
		if tmpl := lookup(n.YNode(), "spec", "template"); tmpl != nil {
			r.pinned[n.GetName()] = yaml.NewRNode(tmpl)
		}
		if metaOf(n).hook {
			continue // Helm deletes and creates hooks: their selector may change
		}
		if sel := lookup(n.YNode(), "spec", "selector"); sel != nil {
			if r.pinnedSelectors == nil {
				r.pinnedSelectors = map[string]*yaml.Node{}
			}
			r.pinnedSelectors[n.GetName()] = sel
		}
	}
	return nil
}

// classify sorts the documents by kind with the cheap scan, and parses the routing
// objects (few and small) and whatever the scan could not classify.
func (r *release) classify() error {
	for _, d := range r.docs {
		if d.empty() {
			continue
		}
		if d.inlineStart {
			line, _ := nextLine(d.body)
			return fmt.Errorf("document %d starts with %q: Kubernetes' YAML reader (kubectl, and Helm when it applies a release) takes nothing but a comment after a --- line, and fails with \"invalid Yaml document separator\"; put the document's content on the lines after --- (a tag such as !!map is not needed: every object is a mapping)",
				d.index, line)
		}
		if d.kind == "" {
			// The cheap scan could not tell: parse, which also rejects non-YAML.
			if _, err := d.parse(); err != nil {
				return err
			}
		}
		switch d.kind {
		case "Deployment":
			r.deploymentDocs = append(r.deploymentDocs, d)
			if d.name != "" {
				r.names = append(r.names, d.name)
			}
		case "Service":
			r.serviceDocs = append(r.serviceDocs, d)
		case "PersistentVolumeClaim":
			r.claimDocs = append(r.claimDocs, d)
		case "ConfigMap", "Secret":
			r.configDocs = append(r.configDocs, d)
		case "HorizontalPodAutoscaler", "VirtualService", "DestinationRule":
			n, err := d.parse()
			if err != nil {
				return err
			}
			if metaOf(n).hook {
				continue
			}
			switch {
			case d.kind == "HorizontalPodAutoscaler":
				r.autoscalers = append(r.autoscalers, d)
			case !isIstioNetworking(n):
			case d.kind == "VirtualService":
				r.vservices = append(r.vservices, d)
			default:
				r.destrules = append(r.destrules, d)
			}
		default:
			if strings.HasSuffix(d.kind, "List") {
				if err := checkList(d); err != nil {
					return err
				}
			}
		}
	}
	return r.checkDuplicates()
}

// checkList refuses a List (kind: List, DeploymentList, ...) that holds an object
// the transformation reads: its Deployments would silently stay uncanaried, its
// Services and routing unread. Lists of anything else pass through.
func checkList(d *document) error {
	n, err := d.parse()
	if err != nil || n == nil {
		return err
	}
	items := lookup(n.YNode(), "items")
	if items == nil || items.Kind != yaml.SequenceNode {
		return nil
	}
	for i, item := range items.Content {
		kind := field(item, "kind")
		if kind == nil {
			continue
		}
		switch kind.Value {
		case "Deployment", "Service", "HorizontalPodAutoscaler", "VirtualService", "DestinationRule":
			name := ""
			if v := lookup(item, "metadata", "name"); v != nil {
				name = " " + v.Value
			}
			return fmt.Errorf("%s holds %s%s (items[%d]); helm-canary reads Deployments, Services, autoscalers and Istio routing only as documents of their own, so it would leave it out: render the List's items as separate documents (--- between them)",
				d.describe(), kind.Value, name, i)
		}
	}
	return nil
}

// targeted reports whether a Deployment document is worth parsing: it may be
// canaried, or it was parsed already anyway (its name was unknown to the scan).
func (r *release) targeted(d *document) bool {
	return r.explicit == nil || d.parsed || d.name == "" || r.explicit[d.name]
}

// indexServices parses the Services that may matter. With named workloads, only
// Services that can possibly select their pods are worth parsing: a selector's values
// are among the pod labels' values, and label values are plain [A-Za-z0-9._-]
// strings, so a Service whose text contains none of them (and no escape sequence)
// cannot select the pods.
func (r *release) indexServices() error {
	var values [][]byte
	var targets []map[string]string
	if r.explicit != nil {
		for _, d := range r.deploymentDocs {
			if !r.targeted(d) {
				continue
			}
			n, err := d.parse()
			if err != nil {
				return err
			}
			name := n.GetName()
			for _, t := range []*yaml.Node{lookup(n.YNode(), "spec", "template"), nodeOf(r.pinned[name])} {
				labels := stringMapNode(lookup(t, "metadata", "labels"))
				targets = append(targets, labels)
				for _, v := range labels {
					if v != "" {
						values = append(values, []byte(v))
					}
				}
			}
		}
	}
	for _, d := range r.serviceDocs {
		if r.explicit != nil && !mayContainAny(d.body, values) {
			continue
		}
		if r.explicit != nil {
			if sel, ok := scanSelector(d.body); ok && !selectsAny(sel, targets) {
				continue
			}
		}
		n, err := d.parse()
		if err != nil {
			return err
		}
		meta := metaOf(n)
		if meta.hook || n.GetApiVersion() != "v1" {
			continue
		}
		spec := lookup(n.YNode(), "spec")
		typ := ""
		if t := field(spec, "type"); t != nil {
			typ = t.Value
		}
		if typ == "ExternalName" {
			continue
		}
		headless := false
		if ip := field(spec, "clusterIP"); ip != nil && ip.Value == "None" {
			headless = true
		}
		svc := &service{doc: d, name: meta.name, ns: meta.ns, typ: typ, headless: headless,
			selector:   stringMapNode(field(spec, "selector")),
			labels:     lookup(n.YNode(), "metadata", "labels"),
			namedPorts: namedTargetPorts(spec),
			ports:      servicePorts(spec)}
		r.services = append(r.services, svc)
		// Services are never changed: keep the facts, let the parsed tree go.
		d.node = nil
	}
	r.index = newServiceIndex(r.services)
	return nil
}

func selectsAny(selector map[string]string, labelSets []map[string]string) bool {
	for _, labels := range labelSets {
		if selects(selector, labels) {
			return true
		}
	}
	return false
}

func mayContainAny(body []byte, values [][]byte) bool {
	if bytes.IndexByte(body, '\\') >= 0 {
		return true
	}
	for _, v := range values {
		if bytes.Contains(body, v) {
			return true
		}
	}
	return false
}

func nodeOf(n *yaml.RNode) *yaml.Node {
	if n == nil {
		return nil
	}
	return n.YNode()
}

func isIstioNetworking(n *yaml.RNode) bool {
	return strings.HasPrefix(n.GetApiVersion(), "networking.istio.io/")
}

type objectMeta struct {
	name, ns string
	hook     bool
}

func metaOf(n *yaml.RNode) objectMeta {
	m := objectMeta{}
	meta := lookup(n.YNode(), "metadata")
	if v := field(meta, "name"); v != nil {
		m.name = v.Value
	}
	if v := field(meta, "namespace"); v != nil {
		m.ns = v.Value
	}
	m.hook = field(field(meta, "annotations"), helmHookAnnotation) != nil
	return m
}

// sameNamespace treats an empty namespace as the release namespace, which is what
// Helm does when it applies the object.
func sameNamespace(a, b string) bool { return a == "" || b == "" || a == b }

// stringMapNode reads a mapping of strings; nil when absent.
func stringMapNode(m *yaml.Node) map[string]string {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	out := make(map[string]string, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		out[m.Content[i].Value] = m.Content[i+1].Value
	}
	return out
}

func templateLabels(tmpl *yaml.RNode) map[string]string {
	return stringMapNode(lookup(nodeOf(tmpl), "metadata", "labels"))
}

// selects reports whether a Service selector picks pods with these labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
