package renderer

import (
	"bytes"
	"fmt"
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
	if err := opts.validate(); err != nil {
		return Result{}, err
	}
	docs := splitDocuments(in)
	if !hasContent(docs) {
		return Result{}, fmt.Errorf("no manifests in the input: pipe in the output of `helm template` or let Helm run the post-renderer")
	}
	r := &release{opts: opts, stage: opts.stage(), track: opts.trackLabel(), docs: docs}
	if err := r.pinProduction(); err != nil {
		return Result{}, err
	}
	if err := r.index(); err != nil {
		return Result{}, err
	}
	if err := r.selectWorkloads(); err != nil {
		return Result{}, err
	}
	for _, f := range r.filters() {
		if err := f(); err != nil {
			return Result{}, err
		}
	}
	var buf bytes.Buffer
	buf.Grow(len(in) + len(in)/2)
	if err := writeDocuments(&buf, docs); err != nil {
		return Result{}, err
	}
	res := Result{Manifest: buf.Bytes(), Warnings: r.warnings}
	for _, w := range r.workloads {
		s := WorkloadSummary{Name: w.name, ProductionPinned: w.pinned != nil && !r.stage.ProductionFromRender()}
		for _, svc := range w.services {
			s.Services = append(s.Services, svc.name)
		}
		res.Workloads = append(res.Workloads, s)
	}
	return res, nil
}

// release is the parsed view of one stream that the filters work on.
type release struct {
	opts  Options
	stage stages.Stage
	track string
	docs  []*document

	deployments []*deployment
	services    []*service
	autoscalers []*document
	vservices   []*document
	destrules   []*document

	// pinned maps Deployment names to their pod templates in the production manifest.
	pinned map[string]*yaml.RNode

	workloads []*workload
	warnings  []string
}

type deployment struct {
	doc      *document
	name, ns string
	template *yaml.RNode       // spec.template as rendered
	labels   map[string]string // the rendered pod template's labels
	selector map[string]string
	hook     bool
}

type service struct {
	doc      *document
	name, ns string
	selector map[string]string
	labels   map[string]string
}

// workload is one canaried Deployment and everything that routes to it.
type workload struct {
	d        *deployment
	name     string
	services []*service
	// pinned is production's pod template from the production manifest, nil when
	// there is none (first install, or rendering offline).
	pinned *yaml.RNode
	// labeled is true when the running production pods (per the production
	// manifest) carry the track label, so the production subset has endpoints.
	labeled bool
	hpas    []*document
	canary  *document
}

// filters is the order of the transformation, in one place.
func (r *release) filters() []func() error {
	return []func() error{
		r.checkServices,
		r.splitDeployments,
		r.twinAutoscalers,
		r.routeDestinationRules,
		r.routeVirtualServices,
	}
}

func hasContent(docs []*document) bool {
	for _, d := range docs {
		if !d.empty() {
			return true
		}
	}
	return false
}

// index parses the documents the transformation may need and classifies them.
func (r *release) index() error {
	explicit := map[string]bool{}
	for _, w := range r.opts.Workloads {
		explicit[w] = true
	}
	var deferredServices []*document
	for _, d := range r.docs {
		if d.empty() {
			continue
		}
		switch d.kind {
		case "":
			// The cheap scan could not classify it: parse, which also rejects non-YAML.
		case "Deployment":
			if len(explicit) > 0 && d.name != "" && !explicit[d.name] {
				// Not targeted: remember its name for error messages, never parse it.
				r.deployments = append(r.deployments, &deployment{doc: d, name: d.name})
				continue
			}
		case "Service":
			if len(explicit) > 0 {
				deferredServices = append(deferredServices, d)
				continue
			}
		case "HorizontalPodAutoscaler", "VirtualService", "DestinationRule":
		default:
			continue
		}
		if err := r.add(d); err != nil {
			return err
		}
	}
	if len(deferredServices) == 0 {
		return nil
	}
	// With named workloads, only Services that can possibly select their pods are
	// worth parsing: a selector's values are among the pod labels' values, and label
	// values are plain [A-Za-z0-9._-] strings, so a Service whose text contains none of
	// them (and no escape sequence) cannot select the pods.
	var values [][]byte
	for _, dep := range r.deployments {
		if dep.template == nil || !explicit[dep.name] {
			continue
		}
		for _, labels := range []map[string]string{dep.labels, templateLabels(r.pinned[dep.name])} {
			for _, v := range labels {
				if v != "" {
					values = append(values, []byte(v))
				}
			}
		}
	}
	for _, d := range deferredServices {
		if mayContainAny(d.body, values) {
			if err := r.add(d); err != nil {
				return err
			}
		}
	}
	return nil
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

// add parses one document and files it by kind.
func (r *release) add(d *document) error {
	n, err := d.parse()
	if err != nil || n == nil {
		return err
	}
	meta := metaOf(n)
	switch {
	case d.kind == "Deployment" && strings.HasPrefix(n.GetApiVersion(), "apps/"):
		var tmpl *yaml.RNode
		if t := lookup(n.YNode(), "spec", "template"); t != nil {
			tmpl = yaml.NewRNode(t)
		}
		dep := &deployment{doc: d, name: meta.name, ns: meta.ns, template: tmpl, labels: templateLabels(tmpl), hook: meta.hook}
		dep.selector = stringMap(n, "spec", "selector", "matchLabels")
		r.deployments = append(r.deployments, dep)
	case d.kind == "Service" && n.GetApiVersion() == "v1":
		if meta.hook {
			return nil
		}
		svcType, _ := n.Pipe(yaml.Lookup("spec", "type"))
		if svcType != nil && yaml.GetValue(svcType) == "ExternalName" {
			return nil
		}
		r.services = append(r.services, &service{doc: d, name: meta.name, ns: meta.ns,
			selector: stringMap(n, "spec", "selector"), labels: n.GetLabels()})
	case d.kind == "HorizontalPodAutoscaler" && !meta.hook:
		r.autoscalers = append(r.autoscalers, d)
	case d.kind == "VirtualService" && isIstioNetworking(n) && !meta.hook:
		r.vservices = append(r.vservices, d)
	case d.kind == "DestinationRule" && isIstioNetworking(n) && !meta.hook:
		r.destrules = append(r.destrules, d)
	}
	return nil
}

func isIstioNetworking(n *yaml.RNode) bool {
	return strings.HasPrefix(n.GetApiVersion(), "networking.istio.io/")
}

type objectMeta struct {
	name, ns string
	hook     bool
}

func metaOf(n *yaml.RNode) objectMeta {
	_, hook := n.GetAnnotations()[helmHookAnnotation]
	return objectMeta{name: n.GetName(), ns: n.GetNamespace(), hook: hook}
}

// sameNamespace treats an empty namespace as the release namespace, which is what
// Helm does when it applies the object.
func sameNamespace(a, b string) bool { return a == "" || b == "" || a == b }

// stringMap reads a map of strings at path; nil when absent.
func stringMap(n *yaml.RNode, path ...string) map[string]string {
	m := lookup(n.YNode(), path...)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	out := make(map[string]string, len(m.Content)/2)
	c := m.Content
	for i := 0; i+1 < len(c); i += 2 {
		out[c[i].Value] = c[i+1].Value
	}
	return out
}

func templateLabels(tmpl *yaml.RNode) map[string]string {
	if tmpl == nil {
		return nil
	}
	return stringMap(tmpl, "metadata", "labels")
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

// pinProduction reads the production manifest's Deployments.
func (r *release) pinProduction() error {
	if len(bytes.TrimSpace(r.opts.ProductionManifest)) == 0 {
		return nil
	}
	pinned := map[string]*yaml.RNode{}
	for _, d := range splitDocuments(r.opts.ProductionManifest) {
		if d.empty() || (d.kind != "" && d.kind != "Deployment") {
			continue
		}
		n, err := d.parse()
		if err != nil {
			return fmt.Errorf("production manifest: %w", err)
		}
		if n == nil || n.GetKind() != "Deployment" {
			continue
		}
		tmpl, err := n.Pipe(yaml.Lookup("spec", "template"))
		if err != nil || tmpl == nil {
			continue
		}
		pinned[n.GetName()] = tmpl
	}
	r.pinned = pinned
	return nil
}
