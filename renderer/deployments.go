package renderer

import (
	"fmt"
	"strconv"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/stages"
)

// splitDeployments turns each canaried Deployment D into production D (same name,
// same immutable selector, pod template per stage) plus D-canary right after it.
func (r *release) splitDeployments() error {
	for _, w := range r.workloads {
		d := w.d.doc.node
		if w.pinned != nil && !w.labeled && r.stage != stages.Stable && r.stage.ProductionWeight() > 0 {
			// Hazard 2: the running production pods lack the track label until they
			// roll, so the production subset would have no endpoints.
			return fmt.Errorf("Deployment %s: its running pods do not carry the label %s=%s yet, so routing %d%% of traffic to the production subset would fail; render stage stable first and let production roll out, then stage %s",
				w.name, r.track, TrackProduction, r.stage.ProductionWeight(), r.stage)
		}

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
		if r.opts.CanaryReplicas != nil {
			canaryReplicas = *r.opts.CanaryReplicas
		}

		// The canary is the Deployment as rendered now: copy before production changes.
		canary := d.Copy()

		// Production's template node is either the rendered one (now only production's,
		// the canary has its copy) or the pinned one, which nothing else uses.
		spec := lookupCreate(d.YNode(), "spec")
		production := r.productionTemplate(w).YNode()
		setField(spec, "template", production)
		setField(lookupCreate(production, "metadata", "labels"), r.track, stringNode(TrackProduction))
		setField(lookupCreate(d.YNode(), "metadata", "labels"), r.track, stringNode(TrackProduction))
		if autoscaled {
			// Hazard 4: a replica count in the manifest would be re-applied on every
			// upgrade and fight the autoscaler.
			deleteField(spec, "replicas")
		}
		w.d.doc.changed = true

		c := canary.YNode()
		setField(lookupCreate(c, "metadata"), "name", stringNode(w.name+canarySuffix))
		setField(lookupCreate(c, "metadata", "labels"), r.track, stringNode(TrackCanary))
		setField(lookupCreate(c, "spec", "selector", "matchLabels"), r.track, stringNode(TrackCanary))
		setField(lookupCreate(c, "spec", "template", "metadata", "labels"), r.track, stringNode(TrackCanary))
		canarySpec := lookupCreate(c, "spec")
		switch {
		case !r.stage.CanaryUp():
			setField(canarySpec, "replicas", intNode(0).YNode())
		case autoscaled:
			// The canary's own autoscaler (twinAutoscalers) sizes it.
			deleteField(canarySpec, "replicas")
		default:
			setField(canarySpec, "replicas", intNode(int64(canaryReplicas)).YNode())
		}
		w.canary = r.attach(w.d.doc, canary)
	}
	return nil
}

// twinAutoscalers gives each canary its own copy of its Deployment's autoscaler while
// canary pods run, so that scaling one side never shifts the traffic ratio (hazard 4).
func (r *release) twinAutoscalers() error {
	if !r.stage.CanaryUp() {
		return nil
	}
	for _, w := range r.workloads {
		for _, hpa := range w.hpas {
			twin := hpa.node.Copy()
			if err := twin.SetName(hpa.node.GetName() + canarySuffix); err != nil {
				return err
			}
			if err := twin.PipeE(yaml.Lookup("spec", "scaleTargetRef"), yaml.SetField("name", yaml.NewStringRNode(w.name+canarySuffix))); err != nil {
				return err
			}
			if r.opts.CanaryReplicas != nil {
				if err := setCanaryMinReplicas(twin, *r.opts.CanaryReplicas); err != nil {
					return fmt.Errorf("HorizontalPodAutoscaler %s: %w", hpa.node.GetName(), err)
				}
			}
			r.attach(hpa, twin)
		}
	}
	return nil
}

// setCanaryMinReplicas makes --canary-replicas the twin's floor, raising its ceiling
// if needed, since an autoscaled canary cannot have a fixed count.
func setCanaryMinReplicas(hpa *yaml.RNode, n int32) error {
	if n < 1 {
		return fmt.Errorf("canary replicas %d: an autoscaled canary needs at least 1", n)
	}
	spec, err := hpa.Pipe(yaml.Lookup("spec"))
	if err != nil || spec == nil {
		return fmt.Errorf("no spec")
	}
	if err := spec.PipeE(yaml.SetField("minReplicas", intNode(int64(n)))); err != nil {
		return err
	}
	if maxNode, _ := spec.Pipe(yaml.Lookup("maxReplicas")); maxNode != nil {
		if m, err := strconv.Atoi(yaml.GetValue(maxNode)); err == nil && int32(m) < n {
			return spec.PipeE(yaml.SetField("maxReplicas", intNode(int64(n))))
		}
	}
	return nil
}

// attach files a new document right after the one it derives from. It points at the
// same template file as its origin: Helm 3's "# Source:" comment and Helm 4's
// filename annotation, so that `--show-only` and Helm 4's file split keep working.
func (r *release) attach(origin *document, n *yaml.RNode) *document {
	header := "---\n"
	if src := origin.source(); src != "" && origin.node.GetAnnotations()[helm4FilenameAnnotation] == "" {
		header += "# Source: " + src + "\n"
	}
	if src := origin.node.GetAnnotations()[helm4FilenameAnnotation]; src != "" {
		_ = n.PipeE(yaml.SetAnnotation(helm4FilenameAnnotation, src))
	}
	doc := &document{header: []byte(header), node: n, parsed: true, changed: true, kind: n.GetKind(), name: n.GetName()}
	origin.after = append(origin.after, doc)
	return doc
}

func intNode(v int64) *yaml.RNode {
	return yaml.NewRNode(&yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagInt, Value: strconv.FormatInt(v, 10)})
}
