package release

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	helmrelease "helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/helm-canary/helm-canary/renderer"
)

// Status is what `helm canary status` reports: the live objects, and where they
// differ from what the release says.
type Status struct {
	Release   string           `json:"release"`
	Namespace string           `json:"namespace"`
	Revision  int              `json:"revision"`
	Stage     string           `json:"stage"`
	Draining  bool             `json:"draining,omitempty"`
	Workloads []WorkloadStatus `json:"workloads"`
}

// WorkloadStatus is one canaried Deployment, as live.
type WorkloadStatus struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	Stage   string `json:"stage"`
	Weights Split  `json:"weights"`
	// Replicas are the desired counts, Ready the ready ones.
	Replicas Split `json:"replicas"`
	Ready    Split `json:"ready"`
	// Autoscaled is true when an autoscaler owns the replica counts.
	Autoscaled bool     `json:"autoscaled,omitempty"`
	Images     Images   `json:"images"`
	Drift      []string `json:"drift,omitempty"`
}

// Split is a production/canary pair.
type Split struct {
	Production int `json:"production"`
	Canary     int `json:"canary"`
}

// Images are the container images of each side.
type Images struct {
	Production []string `json:"production"`
	Canary     []string `json:"canary"`
}

var vsResource = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// Status reads a release's canaried workloads from its manifest and their live
// state from the cluster.
func (c *Client) Status(ctx context.Context, name string) (*Status, error) {
	rel, err := c.last(name)
	if err != nil {
		return nil, err
	}
	return c.StatusOf(ctx, rel)
}

// StatusOf is Status for a release revision already at hand.
func (c *Client) StatusOf(ctx context.Context, rel *helmrelease.Release) (*Status, error) {
	config, err := canaryConfig(rel.Config)
	if err != nil {
		return nil, err
	}
	st := &Status{Release: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, Stage: config.Stage, Draining: config.Draining}
	if st.Stage == "" {
		st.Stage = "stable"
	}
	track := trackLabel(config)
	objs, err := manifestObjects(rel.Manifest)
	if err != nil {
		return nil, err
	}
	cs, dyn, err := c.clients()
	if err != nil {
		return nil, err
	}
	for _, w := range workloadsOf(objs, track) {
		ws := WorkloadStatus{Name: w.name, Service: w.service, Stage: st.Stage}
		if _, staged := rel.Config[ValuesKey]; !staged {
			// Pipeline mode keeps the stage in the pipeline's arguments.
			ws.Stage = inferStage(objs, w).String()
			if st.Stage == "stable" {
				st.Stage = ws.Stage
			}
		}
		if own := config.Workloads[w.name]; own.Stage != "" {
			ws.Stage = own.Stage
			if own.Draining {
				ws.Stage += " (draining)"
			}
		}
		for _, side := range []struct {
			name     string
			desired  map[string]any
			replicas *int
			ready    *int
			images   *[]string
		}{
			{w.name, w.production, &ws.Replicas.Production, &ws.Ready.Production, &ws.Images.Production},
			{w.name + "-canary", w.canary, &ws.Replicas.Canary, &ws.Ready.Canary, &ws.Images.Canary},
		} {
			want := deploymentFacts(side.desired)
			live, err := cs.AppsV1().Deployments(rel.Namespace).Get(ctx, side.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				ws.Drift = append(ws.Drift, fmt.Sprintf("Deployment %s is missing from the cluster", side.name))
				*side.images = want.images
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("Deployment %s: %w", side.name, err)
			}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
			if err != nil {
				return nil, err
			}
			got := deploymentFacts(u)
			*side.images = got.images
			*side.ready = int(live.Status.ReadyReplicas)
			if got.replicas != nil {
				*side.replicas = *got.replicas
			}
			if want.replicas == nil {
				ws.Autoscaled = true
				*side.replicas = int(live.Status.Replicas)
			} else if got.replicas == nil || *got.replicas != *want.replicas {
				ws.Drift = append(ws.Drift, fmt.Sprintf("Deployment %s has %s replicas, the release says %d", side.name, intOr(got.replicas), *want.replicas))
			}
			if strings.Join(got.images, ",") != strings.Join(want.images, ",") {
				ws.Drift = append(ws.Drift, fmt.Sprintf("Deployment %s runs %s, the release says %s", side.name, strings.Join(got.images, ", "), strings.Join(want.images, ", ")))
			}
		}
		ws.Weights = Split{Production: 100}
		first := true
		for _, vs := range objs {
			if vs.kind != "VirtualService" {
				continue
			}
			want := routeWeights(vs.obj, w.service)
			if len(want) == 0 {
				continue
			}
			live, err := dyn.Resource(vsResource).Namespace(rel.Namespace).Get(ctx, vs.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				ws.Drift = append(ws.Drift, fmt.Sprintf("VirtualService %s is missing from the cluster", vs.name))
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("VirtualService %s: %w", vs.name, err)
			}
			got := routeWeights(live.Object, w.service)
			if first && hostsInclude(vs.obj, w.service) && len(got) > 0 {
				ws.Weights, first = got[len(got)-1], false
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				ws.Drift = append(ws.Drift, fmt.Sprintf("VirtualService %s routes %s, the release says %s", vs.name, formatSplits(got), formatSplits(want)))
			}
		}
		st.Workloads = append(st.Workloads, ws)
	}
	return st, nil
}

type object struct {
	kind, name string
	obj        map[string]any
}

func manifestObjects(manifest string) ([]object, error) {
	nodes, err := (&kio.ByteReader{Reader: strings.NewReader(manifest), OmitReaderAnnotations: true}).Read()
	if err != nil {
		return nil, fmt.Errorf("reading the release manifest: %w", err)
	}
	var out []object
	for _, n := range nodes {
		js, err := n.MarshalJSON()
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			return nil, err
		}
		out = append(out, object{kind: n.GetKind(), name: n.GetName(), obj: m})
	}
	return out, nil
}

type workloadObjects struct {
	name, service      string
	production, canary map[string]any
}

// workloadsOf finds the canaried Deployments of a manifest: D with a D-canary whose
// selector has the track label, and the Service host of their DestinationRule.
func workloadsOf(objs []object, track string) []workloadObjects {
	deps := map[string]map[string]any{}
	for _, o := range objs {
		if o.kind == "Deployment" {
			deps[o.name] = o.obj
		}
	}
	var out []workloadObjects
	for _, o := range objs {
		if o.kind != "Deployment" {
			continue
		}
		canary := deps[o.name+"-canary"]
		if canary == nil || str(dig(canary, "spec", "selector", "matchLabels", track)) != renderer.TrackCanary {
			continue
		}
		w := workloadObjects{name: o.name, production: o.obj, canary: canary}
		podLabels, _ := dig(canary, "spec", "template", "metadata", "labels").(map[string]any)
		for _, dr := range objs {
			if dr.kind != "DestinationRule" {
				continue
			}
			subsets, _ := dig(dr.obj, "spec", "subsets").([]any)
			for _, s := range subsets {
				sm, _ := s.(map[string]any)
				labels, _ := sm["labels"].(map[string]any)
				if str(sm["name"]) == renderer.SubsetCanary && labelsWithin(labels, podLabels) {
					w.service = strings.Split(str(dig(dr.obj, "spec", "host")), ".")[0]
				}
			}
		}
		out = append(out, w)
	}
	return out
}

type facts struct {
	replicas *int
	images   []string
}

func deploymentFacts(d map[string]any) facts {
	var f facts
	switch r := dig(d, "spec", "replicas").(type) {
	case int64:
		n := int(r)
		f.replicas = &n
	case float64:
		n := int(r)
		f.replicas = &n
	}
	containers, _ := dig(d, "spec", "template", "spec", "containers").([]any)
	for _, c := range containers {
		if cm, ok := c.(map[string]any); ok {
			f.images = append(f.images, str(cm["image"]))
		}
	}
	return f
}

// routeWeights lists, per http route that reaches the service through the
// production/canary subsets (or its bare host), the traffic split.
func routeWeights(vs map[string]any, service string) []Split {
	routes, _ := dig(vs, "spec", "http").([]any)
	var out []Split
	for _, r := range routes {
		dests, _ := dig(r, "route").([]any)
		var split Split
		relevant := false
		for _, d := range dests {
			host := str(dig(d, "destination", "host"))
			if strings.Split(host, ".")[0] != service {
				continue
			}
			weight := 100
			if len(dests) > 1 {
				weight = toInt(dig(d, "weight"))
			}
			switch str(dig(d, "destination", "subset")) {
			case renderer.SubsetCanary:
				split.Canary, relevant = weight, true
			case renderer.SubsetProduction, "":
				split.Production, relevant = weight, true
			}
		}
		if relevant {
			out = append(out, split)
		}
	}
	return out
}

func hostsInclude(vs map[string]any, service string) bool {
	hosts, _ := dig(vs, "spec", "hosts").([]any)
	for _, h := range hosts {
		if strings.Split(str(h), ".")[0] == service {
			return true
		}
	}
	return false
}

func formatSplits(s []Split) string {
	var parts []string
	for _, x := range s {
		parts = append(parts, fmt.Sprintf("%d/%d", x.Production, x.Canary))
	}
	return strings.Join(parts, ", ")
}

func labelsWithin(sub, labels map[string]any) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func toInt(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}

func intOr(p *int) string {
	if p == nil {
		return "no"
	}
	return fmt.Sprint(*p)
}

// trackLabel is the track label key a canary block uses.
func trackLabel(c renderer.Config) string {
	if c.TrackLabel == "" {
		return renderer.DefaultTrackLabel
	}
	return c.TrackLabel
}
