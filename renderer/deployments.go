package renderer

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"

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
	priors, err := r.priorCanaries()
	if err != nil {
		return err
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
		if d.name == "" {
			r.names = append(r.names, meta.name)
		}
		if base, ok := r.priorOf[d]; ok {
			if r.explicit[meta.name] {
				return fmt.Errorf("workload %q: Deployment %s is the canary helm-canary made for Deployment %s in an earlier render; name %s in --workload", meta.name, meta.name, base, base)
			}
			continue // it is rebuilt with its production Deployment
		}
		prior := priors[meta.name]
		tmpl := lookup(n.YNode(), "spec", "template")
		rendered := tmpl
		if prior != nil {
			// Already canaried: the canary holds the version rendered last.
			rendered = lookup(prior.node.YNode(), "spec", "template")
		}
		dep := &deployment{doc: d, name: meta.name, ns: meta.ns, hook: meta.hook,
			labels:   stringMapNode(lookup(rendered, "metadata", "labels")),
			selector: stringMapNode(lookup(n.YNode(), "spec", "selector", "matchLabels"))}
		parsed[meta.name] = dep
		if meta.hook {
			continue // hooks run once per release event; they are never canaried
		}
		if err := r.checkSelector(meta.name, n); err != nil {
			return err
		}
		r.deployments = append(r.deployments, dep)
		if r.explicit != nil && !r.explicit[meta.name] {
			continue
		}
		if tmpl == nil || rendered == nil {
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
		if !anyRouted(svcs) {
			names := serviceNames(svcs)
			if r.explicit != nil {
				return fmt.Errorf("Deployment %s: Istio proxies none of the ports of the Services that select its pods (%s: UDP or SCTP only), so no route can split their traffic; drop --workload %s",
					dep.name, names, dep.name)
			}
			r.warnf("Deployment %s is not canaried: Istio proxies none of the ports of the Services that select its pods (%s: UDP or SCTP only)", dep.name, names)
			d.node = nil
			continue
		}
		if ok, err := r.checkStateful(dep, n); err != nil || !ok {
			if err != nil {
				return err
			}
			d.node = nil
			continue
		}
		if prior == nil {
			if err := r.checkTrackLabel(dep, n); err != nil {
				return err
			}
		}
		w := &workload{d: dep, name: dep.name, ns: r.namespaceOf(dep.ns), services: svcs, source: d.source(),
			filename: n.GetAnnotations()[helm4FilenameAnnotation], WorkloadOptions: r.opts.forWorkload(dep.name),
			version: strings.Join(images(rendered), ",")}
		if prior != nil {
			w.prior = prior
			for _, hpa := range hpas[dep.name+CanarySuffix] {
				if sameNamespace(hpa.node.GetNamespace(), dep.ns) {
					w.stale = append(w.stale, hpa) // the previous twin; made anew if needed
				}
			}
		}
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
		if prior != nil {
			prior.node = nil
		}
		r.workloads = append(r.workloads, w)
	}
	if r.explicit != nil {
		return r.checkExplicit(parsed)
	}
	return nil
}

// priorCanaries finds the Deployments a previous render made: D-canary next to D,
// its selector carrying the track label canary and D's pods the track label
// production (what render and canary-lib both write). Rendering such a stream again
// rebuilds the pair instead of canarying the canary: render is idempotent. It maps
// D's name to D-canary's document, and fills r.priorOf the other way.
func (r *release) priorCanaries() (map[string]*document, error) {
	r.priorOf = map[*document]string{}
	byName := map[string]*document{}
	for _, d := range r.deploymentDocs {
		if d.name == "" && r.targeted(d) {
			if _, err := d.parse(); err != nil {
				return nil, err
			}
		}
		if d.name != "" {
			byName[d.name] = d
		}
	}
	priors := map[string]*document{}
	for name, c := range byName {
		base, ok := strings.CutSuffix(name, CanarySuffix)
		d := byName[base]
		if !ok || d == nil || (r.explicit != nil && !r.explicit[base] && !r.explicit[name]) {
			continue
		}
		cn, err := c.parse()
		if err != nil {
			return nil, err
		}
		dn, err := d.parse()
		if err != nil {
			return nil, err
		}
		if cn == nil || dn == nil || cn.GetKind() != "Deployment" || dn.GetKind() != "Deployment" || !sameNamespace(c.ns, d.ns) {
			continue
		}
		if stringMapNode(lookup(cn.YNode(), "spec", "selector", "matchLabels"))[r.track] != TrackCanary ||
			stringMapNode(lookup(dn.YNode(), "spec", "template", "metadata", "labels"))[r.track] != TrackProduction {
			continue
		}
		priors[base] = c
		r.priorOf[c] = base
	}
	return priors, nil
}

// checkSelector refuses a chart version that changes a Deployment's spec.selector
// from the production manifest's: Kubernetes rejects the change ("field is
// immutable") for the Deployment and its canary, halfway through the upgrade.
func (r *release) checkSelector(name string, n *yaml.RNode) error {
	was, ok := r.pinnedSelectors[name]
	if !ok {
		return nil
	}
	now := lookup(n.YNode(), "spec", "selector")
	if equalNode(was, now) {
		return nil
	}
	return fmt.Errorf("Deployment %s: this chart version changes spec.selector from %s (the production manifest) to %s, and a Deployment's selector is immutable: Kubernetes would refuse the upgrade for %s and %s%s (\"field is immutable\"). Keep the selector labels as they were (the chart's selectorLabels or matchLabels values), or delete the Deployments first with kubectl delete deployment %s %s%s --cascade=orphan so that the upgrade creates them anew",
		name, flowString(was), flowString(now), name, name, CanarySuffix, name, name, CanarySuffix)
}

// flowString writes a small YAML node on one line, for messages.
func flowString(n *yaml.Node) string {
	if n == nil {
		return "none"
	}
	c := yaml.CopyYNode(n)
	var flow func(*yaml.Node)
	flow = func(n *yaml.Node) {
		n.Style = yaml.FlowStyle
		n.HeadComment, n.LineComment, n.FootComment = "", "", ""
		for _, x := range n.Content {
			flow(x)
		}
	}
	flow(c)
	out, err := yaml.NewRNode(c).String()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(out)
}

// checkTrackLabel refuses a track label key the chart already uses on a Deployment
// or its pods for something else (app, version): setting it would change the chart's
// own label, and break the selector Kubernetes validates against it.
func (r *release) checkTrackLabel(dep *deployment, n *yaml.RNode) error {
	for _, place := range []struct {
		where  string
		labels map[string]string
	}{
		{"pod labels", dep.labels},
		{"spec.selector.matchLabels", dep.selector},
		{"labels", stringMapNode(lookup(n.YNode(), "metadata", "labels"))},
	} {
		// The value production is helm-canary's own (a stream labeled before).
		if v, ok := place.labels[r.track]; ok && v != TrackProduction {
			return fmt.Errorf("Deployment %s: the track label key %q is already one of its %s (%s=%s); helm-canary sets it to %s or %s, which would break the chart's own use of it: pass a --track-label (canary.trackLabel) the chart does not use (default %s)",
				dep.name, r.track, place.where, r.track, v, TrackProduction, TrackCanary, DefaultTrackLabel)
		}
	}
	return nil
}

// split writes production D and D-canary for one workload. d is the Deployment as
// the stream has it; when the stream was rendered before, d is production and the
// previous canary (w.prior) holds the version rendered last.
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
	if err := w.checkCanaryPods(autoscaled, canaryReplicas); err != nil && w.blocked == nil {
		w.blocked = err // reported once the workloads are settled, like hazard 2
	}

	canarySource, canaryDoc := d, w.d.doc
	if w.prior != nil {
		canarySource, canaryDoc = w.prior.node, w.prior
	}
	own := lookup(d.YNode(), "spec", "template")
	rendered := lookup(canarySource.YNode(), "spec", "template")
	production := own
	switch {
	case w.pinned:
		production = r.pinned[w.name].YNode()
	case w.prior != nil && w.Stage.ProductionFromRender():
		// Production takes the pod template the earlier render gave the canary,
		// with the originals of the canary's config copies.
		production = rendered
		ns := r.namespaceOf(w.d.ns)
		if renames := r.productionConfigNames(rendered, ns); len(renames) > 0 {
			production = yaml.CopyYNode(rendered)
			renameConfigRefs(production, ns, renames, setScalar)
		}
		// and with the chart's own version labels, not the canary's.
		restored := production
		if production == rendered {
			restored = yaml.CopyYNode(rendered)
		}
		if !w.KeepVersionLabels && r.productionVersions(restored, w.d.selector) {
			production = restored
		}
	}
	w.productionLabels = stringMapNode(lookup(production, "metadata", "labels"))
	if err := r.checkServices(w, production, rendered); err != nil {
		return err
	}
	w.versions = r.canaryVersions(w, d)
	renames, err := r.canaryConfigNames(w, rendered)
	if err != nil {
		return err
	}
	w.configRenames = renames
	// Production keeps its own pod template (plus the track label): edit its bytes.
	keeps := production == own || sameTemplate(production, own, r.track) || (w.prior != nil && sameTemplate(own, production, r.track))
	if spliceEnabled && keeps && !w.d.doc.expanded && !canaryDoc.expanded {
		if ok, err := r.spliceSplit(w, d, canarySource, canaryDoc, autoscaled, canaryReplicas); ok || err != nil {
			return err
		}
	}
	return r.encodeSplit(w, d, canarySource, production, autoscaled, canaryReplicas)
}

// spliceEnabled lets tests compare the splicing path with the encoding path;
// encodedSplits counts the Deployments that took the encoding path.
var (
	spliceEnabled = true
	encodedSplits int
)

// spliceSplit writes production and canary as edits of their sources' bytes, when
// production keeps its own pod template. It returns false, without error, when the
// layout is not one it can edit safely.
func (r *release) spliceSplit(w *workload, d, canarySource *yaml.RNode, canaryDoc *document, autoscaled bool, canaryReplicas int32) (bool, error) {
	n := d.YNode()
	meta, spec := lookup(n, "metadata"), lookup(n, "spec")

	production := newSplicer(w.d.doc.body)
	production.setLabel(meta, r.track, TrackProduction)
	production.setKey(lookup(spec, "template", "metadata", "labels"), r.track, TrackProduction)
	if autoscaled {
		production.deleteEntry(spec, "replicas")
	}
	productionOut, ok := production.apply(w.d.doc.header)
	if !ok {
		return false, nil
	}

	c := canarySource.YNode()
	meta, spec = lookup(c, "metadata"), lookup(c, "spec")
	canary := newSplicer(canaryDoc.body)
	canary.replaceScalar(field(meta, "name"), scalarText(w.name+CanarySuffix)) // quoted if the name needs it
	canary.setLabel(meta, r.track, TrackCanary)
	canary.setKey(lookup(spec, "selector", "matchLabels"), r.track, TrackCanary)
	podLabels := lookup(spec, "template", "metadata", "labels")
	canary.setKey(podLabels, r.track, TrackCanary)
	for _, key := range VersionLabels {
		to, ok := w.versions[key]
		if !ok {
			continue
		}
		if v := field(podLabels, key); v != nil {
			canary.replace(v, scalarText(to), true)
		} else {
			canary.insertKey(podLabels, key, scalarText(to))
		}
	}
	renameConfigRefs(lookup(spec, "template"), r.namespaceOf(w.d.ns), w.configRenames, func(n *yaml.Node, to string) {
		canary.replace(n, scalarText(to), true)
	})
	entries := [][2]string{{AnnotationStage, scalarText(w.Stage.String())}}
	if w.Draining {
		entries = append(entries, [2]string{AnnotationDraining, scalarText("true")})
	}
	domain := r.recordedDomain()
	if domain != "" {
		entries = append(entries, [2]string{AnnotationClusterDomain, scalarText(domain)})
	}
	canary.setNested(meta, "annotations", entries...)
	if a := field(meta, "annotations"); !w.Draining && field(a, AnnotationDraining) != nil {
		canary.deleteEntry(a, AnnotationDraining) // a stream rendered at final's first step
	}
	if a := field(meta, "annotations"); domain == "" && field(a, AnnotationClusterDomain) != nil {
		canary.deleteEntry(a, AnnotationClusterDomain)
	}
	replicas := field(spec, "replicas")
	switch {
	case autoscaled && w.canaryUp():
		canary.deleteEntry(spec, "replicas") // the canary's own autoscaler sizes it
	case replicas != nil:
		canary.replaceScalar(replicas, strconv.Itoa(int(w.canaryReplicas(canaryReplicas))))
	default:
		canary.insertKey(spec, "replicas", strconv.Itoa(int(w.canaryReplicas(canaryReplicas))))
	}
	canaryOut, ok := canary.apply(attachHeader(w.source, w.filename))
	if !ok {
		return false, nil
	}

	w.d.doc.out = productionOut
	w.canary = &document{out: canaryOut, generated: true}
	w.d.doc.after = append(w.d.doc.after, w.canary)
	w.canary.kind, w.canary.name, w.canary.ns = "Deployment", w.name+CanarySuffix, w.d.ns
	return true, nil
}

// checkCanaryPods refuses a stage that routes traffic to a canary with no pods: the
// canary subset would have no endpoints and Istio answers 503 for that share (the
// library chart refuses the same). An autoscaled canary always has pods: its twin
// autoscaler's floor is at least 1.
func (w *workload) checkCanaryPods(autoscaled bool, replicas int32) error {
	if autoscaled || replicas > 0 || !w.live() {
		return nil
	}
	var what string
	switch {
	case w.Stage.CanaryWeight() > 0:
		what = fmt.Sprintf("routes %d%% of traffic to the canary", w.Stage.CanaryWeight())
	case len(w.Match) > 0 || w.Sticky != nil || w.UserPercent != nil:
		what = "routes the requests its match, sticky or userPercent rules pick to the canary"
	default:
		return nil
	}
	why := "production's spec.replicas is 0 and the canary runs as many pods as production"
	if w.CanaryReplicas != nil {
		why = "canary replicas is 0 (--canary-replicas, or canaryReplicas in the canary settings)"
	}
	return fmt.Errorf("Deployment %s: stage %s %s, but the canary would run no pods: %s; give the canary at least 1 replica, or stay at stage stable",
		w.name, w.Stage, what, why)
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
func (r *release) encodeSplit(w *workload, d, canarySource *yaml.RNode, production *yaml.Node, autoscaled bool, canaryReplicas int32) error {
	encodedSplits++
	// The canary is the Deployment as rendered now: copy before production changes.
	canary := canarySource.Copy()
	c := canary.YNode()
	ns := r.namespaceOf(w.d.ns)
	renameConfigRefs(lookup(c, "spec", "template"), ns, w.configRenames, setScalar)
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
	podLabels := lookupCreate(c, "spec", "template", "metadata", "labels")
	setField(podLabels, r.track, stringNode(TrackCanary))
	for _, key := range VersionLabels {
		if to, ok := w.versions[key]; ok {
			setField(podLabels, key, stringNode(to))
		}
	}
	annotations := lookupCreate(c, "metadata", "annotations")
	setField(annotations, AnnotationStage, stringNode(w.Stage.String()))
	if w.Draining {
		setField(annotations, AnnotationDraining, stringNode("true"))
	} else {
		deleteField(annotations, AnnotationDraining)
	}
	if domain := r.recordedDomain(); domain != "" {
		setField(annotations, AnnotationClusterDomain, stringNode(domain))
	} else {
		deleteField(annotations, AnnotationClusterDomain)
	}
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
	if filename != "" {
		annotations := lookupCreate(n.YNode(), "metadata", "annotations")
		setField(annotations, helm4FilenameAnnotation, stringNode(filename))
	}
	// Encoded into a scratch buffer and kept at its exact size: a release holds
	// thousands of these until the output is written.
	buf := scratch.Get().(*bytes.Buffer)
	defer scratch.Put(buf)
	buf.Reset()
	buf.Write(attachHeader(source, filename))
	if err := encodeNode(buf, n); err != nil {
		return nil, err
	}
	doc := &document{out: bytes.Clone(buf.Bytes()), kind: n.GetKind(), name: n.GetName(), ns: n.GetNamespace(), generated: true}
	origin.after = append(origin.after, doc)
	return doc, nil
}

var scratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// attachHeader is the separator and, for Helm 3, the origin's Source comment that
// a document derived from it starts with; a Helm 4 body carries the origin's
// filename annotation instead.
func attachHeader(source, filename string) []byte {
	header := "---\n"
	if filename == "" && source != "" {
		header += "# Source: " + source + "\n"
	}
	return []byte(header)
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

// replacePrior settles the objects helm-canary makes against the input's. An input
// object of the same kind, namespace and name as one made now is, for a workload the
// stream had canaried already, what the earlier render made: it gives way to the new
// one, which takes its place. For any other workload it is the chart's own object,
// and two objects of one name cannot both be applied: refused, naming it.
func (r *release) replacePrior() error {
	type made struct {
		doc *document
		w   *workload
	}
	byName := map[string][]made{}
	var walk func(w *workload, docs []*document)
	walk = func(w *workload, docs []*document) {
		for _, g := range docs {
			if g.generated {
				byName[g.kind+"/"+g.name] = append(byName[g.kind+"/"+g.name], made{g, w})
			}
			walk(w, g.after)
		}
	}
	kinds := map[string]bool{}
	for _, w := range r.workloads {
		walk(w, w.d.doc.after)
		for _, hpa := range w.hpas {
			walk(w, hpa.after)
		}
	}
	for key := range byName {
		kind, _, _ := strings.Cut(key, "/")
		kinds[kind] = true
	}
	for _, d := range r.docs {
		if d.empty() || d.generated || d.drop {
			continue
		}
		if w := r.userFilterOwner(d); w != nil {
			w.stale = append(w.stale, d)
		}
		if !kinds[d.kind] {
			continue
		}
		if d.name == "" {
			if _, err := d.parse(); err != nil {
				return err
			}
		}
		candidates := byName[d.kind+"/"+d.name]
		if len(candidates) == 0 {
			continue
		}
		if !d.parsed {
			if _, err := d.parse(); err != nil {
				return err
			}
		}
		for _, m := range candidates {
			if !sameNamespace(m.doc.ns, d.ns) {
				continue
			}
			if m.w.prior == nil {
				return fmt.Errorf("%s: helm-canary makes a %s named %s for Deployment %s, and the chart has one already; two objects of one name cannot both be applied: rename the chart's %s (or leave %s out of --workload)",
					d.describe(), d.kind, d.name, m.w.name, d.kind, m.w.name)
			}
			d.drop = true
			if !m.doc.moved {
				d.replacedBy, m.doc.moved = m.doc, true
				break
			}
		}
	}
	// What the earlier render made and this one does not (the autoscaler's twin
	// without canary pods, the gateway filter at stable) goes.
	for _, w := range r.workloads {
		for _, d := range w.stale {
			d.drop = true
		}
	}
	return nil
}

// userFilterOwner finds the already canaried workload an input gateway filter was
// made for by an earlier render (its kind, its name, helm-canary's annotations).
func (r *release) userFilterOwner(d *document) *workload {
	if d.kind != "EnvoyFilter" && d.kind != "WasmPlugin" && d.kind != "ASMHeaderPropagation" {
		return nil
	}
	for _, w := range r.workloads {
		if w.prior == nil {
			continue
		}
		want := map[string]string{"EnvoyFilter": sharedName(w.name, w.ns, "canary-users"),
			"WasmPlugin": sharedName(w.name, w.ns, "hash-tagging"), "ASMHeaderPropagation": w.name + "-tag-propagation"}[d.kind]
		if d.name != "" && d.name != want {
			continue
		}
		n, err := d.parse()
		if err != nil || n == nil || n.GetName() != want {
			continue
		}
		if _, ours := n.GetAnnotations()[AnnotationUserHeader]; ours || d.kind == "ASMHeaderPropagation" {
			return w
		}
	}
	return nil
}

func anyRouted(svcs []*service) bool {
	for _, svc := range svcs {
		if planPorts(svc).routed {
			return true
		}
	}
	return false
}

func serviceNames(svcs []*service) string {
	var names []string
	for _, svc := range svcs {
		names = append(names, svc.name)
	}
	return strings.Join(names, ", ")
}

// recordedDomain is the cluster domain to record on the canary Deployments: the
// configured one when it is not the default, else "".
func (r *release) recordedDomain() string {
	if d := r.clusterDomain(); d != DefaultClusterDomain {
		return d
	}
	return ""
}
