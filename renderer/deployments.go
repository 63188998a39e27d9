package renderer

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/stages"
)

// splitDeployments turns each canaried Deployment D into production D (same name,
// same immutable selector, pod template per stage) plus D-canary right after it.
// Each Deployment is parsed, split and encoded in one go, and its parsed tree is
// dropped: only small facts about it outlive this step.
func (r *release) splitDeployments() error {
	hpas := map[string][]*document{}
	for _, doc := range r.autoscalers {
		ref := lookup(doc.node.YNode(), "spec", "scaleTargetRef")
		if kind := field(ref, "kind"); kind != nil && kind.Value == "Deployment" {
			if name := field(ref, "name"); name != nil {
				hpas[name.Value] = append(hpas[name.Value], doc)
			}
		}
	}
	parsed := map[string]*deployment{}
	for _, d := range r.deploymentDocs {
		if !r.targeted(d) {
			continue
		}
		n, err := d.parse()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(n.GetApiVersion(), "apps/") {
			continue
		}
		meta := metaOf(n)
		tmpl := lookup(n.YNode(), "spec", "template")
		dep := &deployment{doc: d, name: meta.name, ns: meta.ns, hook: meta.hook,
			labels:   stringMapNode(lookup(tmpl, "metadata", "labels")),
			selector: stringMapNode(lookup(n.YNode(), "spec", "selector", "matchLabels"))}
		if d.name == "" {
			r.names = append(r.names, meta.name)
		}
		parsed[meta.name] = dep
		if meta.hook {
			continue // hooks run once per release event; they are never canaried
		}
		r.deployments = append(r.deployments, dep)
		if r.explicit != nil && !r.explicit[meta.name] {
			continue
		}
		if r.explicit == nil {
			// Re-rendering a stream that already has canaries must not canary them.
			if base, ok := strings.CutSuffix(meta.name, CanarySuffix); ok && slices.Contains(r.names, base) {
				continue
			}
		}
		if tmpl == nil {
			return fmt.Errorf("Deployment %s has no spec.template; fix its template", meta.name)
		}
		svcs := r.servicesOf(dep)
		if len(svcs) == 0 {
			if r.explicit != nil {
				return fmt.Errorf("Deployment %s: no Service in the manifests selects its pods (pod labels %s); canary traffic is routed through a Service: add one that selects these labels, or drop --workload %s",
					dep.name, formatLabels(dep.labels), dep.name)
			}
			d.node = nil
			continue // a Deployment nothing routes to is left alone
		}
		w := &workload{d: dep, name: dep.name, services: svcs, source: d.source(),
			filename: n.GetAnnotations()[helm4FilenameAnnotation], WorkloadOptions: r.opts.forWorkload(dep.name),
			version: strings.Join(images(tmpl), ",")}
		for _, hpa := range hpas[dep.name] {
			if sameNamespace(hpa.node.GetNamespace(), dep.ns) {
				w.hpas = append(w.hpas, hpa)
			}
		}
		if pinned := r.pinned[dep.name]; pinned != nil {
			w.pinned = !w.Stage.ProductionFromRender()
			w.labeled = templateLabels(pinned)[r.track] == TrackProduction
			if !w.labeled && w.Stage != stages.Stable && w.Stage.ProductionWeight() > 0 {
				// Hazard 2: the running production pods lack the track label until they
				// roll, so the production subset would have no endpoints. Reported once
				// the workloads are settled (resolveSharedHosts may drop this one).
				w.blocked = fmt.Errorf("Deployment %s: its running pods do not carry the label %s=%s yet, so routing %d%% of traffic to the production subset would fail; render stage stable first and let production roll out, then stage %s",
					dep.name, r.track, TrackProduction, w.Stage.ProductionWeight(), w.Stage)
			}
		}
		if err := r.split(w, n); err != nil {
			return err
		}
		d.node = nil
		r.workloads = append(r.workloads, w)
	}
	if r.explicit != nil {
		return r.checkExplicit(parsed)
	}
	return nil
}

// split writes production D and D-canary for one workload.
func (r *release) split(w *workload, d *yaml.RNode) error {
	autoscaled := len(w.hpas) > 0
	productionReplicas := int32(1)
	if v := lookup(d.YNode(), "spec", "replicas"); v != nil {
		n, err := strconv.ParseInt(v.Value, 10, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("Deployment %s: spec.replicas %q is not a whole number; fix the chart value that sets it", w.name, v.Value)
		}
		productionReplicas = int32(n)
	}
	canaryReplicas := productionReplicas
	if w.CanaryReplicas != nil {
		canaryReplicas = *w.CanaryReplicas
	}

	rendered := lookup(d.YNode(), "spec", "template")
	production := rendered
	if w.pinned {
		production = r.pinned[w.name].YNode()
	}
	if err := r.checkServices(w, production, rendered); err != nil {
		return err
	}
	if spliceEnabled && (!w.pinned || sameTemplate(production, rendered, r.track)) {
		if ok, err := r.spliceSplit(w, d, autoscaled, canaryReplicas); ok || err != nil {
			return err
		}
	}
	return r.encodeSplit(w, d, production, autoscaled, canaryReplicas)
}

// spliceEnabled lets tests compare the splicing path with the encoding path.
var spliceEnabled = true

// spliceSplit writes production and canary as edits of the rendered bytes, when
// production runs the rendered pod template. It returns false, without error, when
// the layout is not one it can edit safely.
func (r *release) spliceSplit(w *workload, d *yaml.RNode, autoscaled bool, canaryReplicas int32) (bool, error) {
	n := d.YNode()
	body := w.d.doc.body
	meta, spec := lookup(n, "metadata"), lookup(n, "spec")
	templateLabels := lookup(spec, "template", "metadata", "labels")

	production := newSplicer(body)
	production.insertKey(field(meta, "labels"), r.track, TrackProduction)
	production.insertKey(templateLabels, r.track, TrackProduction)
	if autoscaled {
		production.deleteEntry(spec, "replicas")
	}
	productionBytes, ok := production.apply()
	if !ok {
		return false, nil
	}

	canary := newSplicer(body)
	canary.replaceScalar(field(meta, "name"), w.name+CanarySuffix)
	canary.insertKey(field(meta, "labels"), r.track, TrackCanary)
	canary.insertKey(lookup(spec, "selector", "matchLabels"), r.track, TrackCanary)
	canary.insertKey(templateLabels, r.track, TrackCanary)
	replicas := field(spec, "replicas")
	switch {
	case autoscaled && w.canaryUp():
		canary.deleteEntry(spec, "replicas") // the canary's own autoscaler sizes it
	case replicas != nil:
		canary.replaceScalar(replicas, strconv.Itoa(int(w.canaryReplicas(canaryReplicas))))
	default:
		canary.insertKey(spec, "replicas", strconv.Itoa(int(w.canaryReplicas(canaryReplicas))))
	}
	canaryBytes, ok := canary.apply()
	if !ok {
		return false, nil
	}

	w.d.doc.out = append(append([]byte{}, w.d.doc.header...), productionBytes...)
	w.canary = attachBytes(w.d.doc, w.source, w.filename, canaryBytes)
	return true, nil
}

// canaryReplicas is the canary's replica count at this stage, when no autoscaler
// sizes it.
func (w *workload) canaryReplicas(up int32) int32 {
	if !w.canaryUp() {
		return 0
	}
	return up
}

// encodeSplit builds production and canary as trees and encodes them: the general
// path, for pinned templates and layouts the splicer does not edit.
func (r *release) encodeSplit(w *workload, d *yaml.RNode, production *yaml.Node, autoscaled bool, canaryReplicas int32) error {
	// The canary is the Deployment as rendered now: copy before production changes.
	canary := d.Copy()
	c := canary.YNode()
	spec := lookupCreate(d.YNode(), "spec")
	setField(spec, "template", production)
	setField(lookupCreate(production, "metadata", "labels"), r.track, stringNode(TrackProduction))
	setField(lookupCreate(d.YNode(), "metadata", "labels"), r.track, stringNode(TrackProduction))
	if autoscaled {
		// Hazard 4: a replica count in the manifest would be re-applied on every
		// upgrade and fight the autoscaler.
		deleteField(spec, "replicas")
	}

	setField(lookupCreate(c, "metadata"), "name", stringNode(w.name+CanarySuffix))
	setField(lookupCreate(c, "metadata", "labels"), r.track, stringNode(TrackCanary))
	setField(lookupCreate(c, "spec", "selector", "matchLabels"), r.track, stringNode(TrackCanary))
	setField(lookupCreate(c, "spec", "template", "metadata", "labels"), r.track, stringNode(TrackCanary))
	canarySpec := lookupCreate(c, "spec")
	if autoscaled && w.canaryUp() {
		deleteField(canarySpec, "replicas") // the canary's own autoscaler sizes it
	} else {
		setField(canarySpec, "replicas", intScalar(strconv.Itoa(int(w.canaryReplicas(canaryReplicas)))))
	}

	var buf bytes.Buffer
	buf.Write(w.d.doc.header)
	if err := encodeNode(&buf, d); err != nil {
		return err
	}
	w.d.doc.out = buf.Bytes()
	doc, err := attach(w.d.doc, w.source, w.filename, canary)
	if err != nil {
		return err
	}
	w.canary = doc
	return nil
}

// twinAutoscalers gives each canary its own copy of its Deployment's autoscaler while
// canary pods run, so that scaling one side never shifts the traffic ratio (hazard 4).
func (r *release) twinAutoscalers() error {
	for _, w := range r.workloads {
		if !w.canaryUp() {
			continue
		}
		for _, hpa := range w.hpas {
			twin := hpa.node.Copy()
			t := twin.YNode()
			setField(lookupCreate(t, "metadata"), "name", stringNode(hpa.node.GetName()+CanarySuffix))
			setField(lookupCreate(t, "spec", "scaleTargetRef"), "name", stringNode(w.name+CanarySuffix))
			if w.CanaryReplicas != nil {
				if err := setCanaryMinReplicas(t, *w.CanaryReplicas); err != nil {
					return fmt.Errorf("HorizontalPodAutoscaler %s: %w", hpa.node.GetName(), err)
				}
			}
			if _, err := attach(hpa, hpa.source(), hpa.node.GetAnnotations()[helm4FilenameAnnotation], twin); err != nil {
				return err
			}
		}
	}
	return nil
}

// setCanaryMinReplicas makes --canary-replicas the twin's floor, raising its ceiling
// if needed, since an autoscaled canary cannot have a fixed count.
func setCanaryMinReplicas(hpa *yaml.Node, n int32) error {
	if n < 1 {
		return fmt.Errorf("canary replicas %d: an autoscaled canary needs at least 1", n)
	}
	spec := lookupCreate(hpa, "spec")
	setField(spec, "minReplicas", intScalar(strconv.Itoa(int(n))))
	if m := field(spec, "maxReplicas"); m != nil {
		if v, err := strconv.Atoi(m.Value); err == nil && int32(v) < n {
			setField(spec, "maxReplicas", intScalar(strconv.Itoa(int(n))))
		}
	}
	return nil
}

// attach encodes a new document and files it right after the one it derives from.
// It points at the same template file as its origin: Helm 3's "# Source:" comment or
// Helm 4's filename annotation, so that `--show-only` and Helm 4's file split keep
// working.
func attach(origin *document, source, filename string, n *yaml.RNode) (*document, error) {
	var buf bytes.Buffer
	buf.WriteString("---\n")
	if filename != "" {
		annotations := lookupCreate(n.YNode(), "metadata", "annotations")
		setField(annotations, helm4FilenameAnnotation, stringNode(filename))
	} else if source != "" {
		buf.WriteString("# Source: " + source + "\n")
	}
	if err := encodeNode(&buf, n); err != nil {
		return nil, err
	}
	doc := &document{out: buf.Bytes(), kind: n.GetKind(), name: n.GetName()}
	origin.after = append(origin.after, doc)
	return doc, nil
}

// attachBytes files an already written document body after its origin, under a
// separator and the origin's Source comment (Helm 3); a Helm 4 body already carries
// the origin's filename annotation.
func attachBytes(origin *document, source, filename string, body []byte) *document {
	header := "---\n"
	if filename == "" && source != "" {
		header += "# Source: " + source + "\n"
	}
	doc := &document{out: append([]byte(header), body...)}
	origin.after = append(origin.after, doc)
	return doc
}

// images lists a pod template's container images.
func images(tmpl *yaml.Node) []string {
	var out []string
	if cs := lookup(tmpl, "spec", "containers"); cs != nil {
		for _, c := range cs.Content {
			if img := field(c, "image"); img != nil {
				out = append(out, img.Value)
			}
		}
	}
	return out
}
