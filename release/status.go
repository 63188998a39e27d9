package release

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	helmrelease "helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/helm-canary/helm-canary/canaried"
	"github.com/helm-canary/helm-canary/renderer"
)

// Status is what `helm canary status` reports: the revision that is deployed, its
// objects as live and where they differ from what it says, and a newer revision
// that is not (or not yet) deployed.
type Status struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	// Revision is the deployed revision (the newest one when none is deployed, a
	// failed first install); Status is its Helm status.
	Revision  int              `json:"revision"`
	Status    string           `json:"status"`
	Stage     string           `json:"stage"`
	Draining  bool             `json:"draining,omitempty"`
	Workloads []WorkloadStatus `json:"workloads"`
	// Newer is the newest revision when it is not the deployed one: an upgrade that
	// failed, or one in progress or interrupted (pending). Its stage is not live.
	Newer *Revision `json:"newer,omitempty"`
	// Mesh is the companion release of the routing objects, when they live in a
	// mesh cluster (ASM's control plane, Istio's config cluster).
	Mesh *MeshStatus `json:"mesh,omitempty"`
}

// MeshErr is an error when the mesh cluster could not be read, for a non-zero exit
// after the report of what could be.
func (s *Status) MeshErr() error {
	if s.Mesh == nil || s.Mesh.Error == "" {
		return nil
	}
	return fmt.Errorf("release %q: %s: the routing objects and the traffic split are not known; the workloads above are as live", s.Release, s.Mesh.Error)
}

// Revision is one revision of a release as Helm records it.
type Revision struct {
	Revision    int    `json:"revision"`
	Status      string `json:"status"`
	Description string `json:"description,omitempty"`
	// Stage is the stage the revision was meant to reach ("" when its values say
	// none: a plain helm upgrade, or pipeline mode).
	Stage string `json:"stage,omitempty"`
}

// WorkloadStatus is one canaried Deployment, as live.
type WorkloadStatus struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	Stage   string `json:"stage"`
	// Weights are the live traffic split (none when the mesh cluster holding the
	// routes could not be read).
	Weights Split `json:"weights,omitzero"`
	// Ports is the split of each port of the Service, by the route Istio applies
	// to its protocol (http, tcp, tls), or none: then by pod count.
	Ports []canaried.PortSplit `json:"ports,omitempty"`
	// Replicas are the desired counts, Ready the ready ones.
	Replicas Split `json:"replicas"`
	Ready    Split `json:"ready"`
	// Autoscaled is true when an autoscaler owns the replica counts.
	Autoscaled bool   `json:"autoscaled,omitempty"`
	Images     Images `json:"images"`
	// Versions are what Istio's telemetry and Kiali report as each side's version
	// (the canonical revision of its pods' labels).
	Versions Versions `json:"versions"`
	Drift    []string `json:"drift,omitempty"`
}

// Versions are the versions Istio reports for each side's pods.
type Versions struct {
	Production string `json:"production"`
	Canary     string `json:"canary"`
}

// Split is a production/canary pair.
type Split = canaried.Split

// Images are the container images of each side.
type Images struct {
	Production []string `json:"production"`
	Canary     []string `json:"canary"`
}

// Status reads the deployed revision's canaried workloads from its manifest and
// their live state from the cluster, and names a newer revision that is not
// deployed. A failed or pending revision's stage is not what runs: reporting it as
// live would hide the very state a user runs status to find.
func (c *Client) Status(ctx context.Context, name string) (*Status, error) {
	last, err := c.last(name)
	if err != nil {
		return nil, err
	}
	deployed, err := c.deployed(name)
	if err != nil {
		return nil, err
	}
	st, err := c.StatusOf(ctx, deployed)
	if err != nil {
		return nil, err
	}
	if last.Version != deployed.Version {
		st.Newer = revisionOf(last)
	}
	return st, nil
}

func revisionOf(rel *helmrelease.Release) *Revision {
	r := &Revision{Revision: rel.Version}
	if rel.Info != nil {
		r.Status, r.Description = rel.Info.Status.String(), rel.Info.Description
	}
	if _, staged := rel.Config[ValuesKey]; staged {
		if config, err := canaryConfig(rel.Config); err == nil {
			r.Stage = config.Stage
		}
	}
	return r
}

// StatusOf is Status for a release revision already at hand.
func (c *Client) StatusOf(ctx context.Context, rel *helmrelease.Release) (*Status, error) {
	config, err := canaryConfig(rel.Config)
	if err != nil {
		return nil, err
	}
	st := &Status{Release: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, Stage: config.Stage, Draining: config.Draining}
	if rel.Info != nil {
		st.Status = rel.Info.Status.String()
	}
	if st.Stage == "" {
		st.Stage = "stable"
	}
	m, err := canaried.Read([]byte(rel.Manifest), rel.Namespace)
	if err != nil {
		return nil, err
	}
	if config.ClusterDomain != "" {
		m.Domain = config.ClusterDomain
	}
	cs, dyn, err := c.clients()
	if err != nil {
		return nil, err
	}
	meshDrift := ""
	mesh, m2, dyn2, meshDrift, err := c.meshSources(rel, config, m, dyn)
	var unreachable *MeshError
	switch {
	case errors.As(err, &unreachable):
		// What the workload cluster holds is still worth reporting; the routes
		// and the traffic split are not known (see Status.MeshErr).
		st.Mesh = &MeshStatus{Cluster: unreachable.Cluster, Release: unreachable.Release, Status: "unreachable", Error: unreachable.Error()}
	case err != nil:
		return nil, err
	default:
		st.Mesh, m, dyn = mesh, m2, dyn2
	}
	for _, w := range m.Workloads(trackLabel(config)) {
		ws := WorkloadStatus{Name: w.Name, Service: w.Service, Stage: st.Stage}
		if _, staged := rel.Config[ValuesKey]; !staged {
			// Pipeline mode keeps the stage in the pipeline's arguments.
			at := m.Stage(w)
			ws.Stage = at.Stage.String()
			if st.Stage == "stable" {
				st.Stage, st.Draining = ws.Stage, at.Draining
			}
			if at.Draining {
				ws.Stage += drainingLabel(ws.Stage)
			}
		}
		if own := config.Workloads[w.Name]; own.Stage != "" {
			ws.Stage = own.Stage
			if own.Draining {
				ws.Stage += drainingLabel(own.Stage)
			}
		}
		if err := deploymentsStatus(ctx, cs, rel.Namespace, w, &ws); err != nil {
			return nil, err
		}
		if unreachable != nil {
			st.Workloads = append(st.Workloads, ws)
			continue
		}
		lives, err := routingStatus(ctx, dyn, m, w, &ws)
		if err != nil {
			return nil, err
		}
		if svc := m.Get("Service", w.Service); svc != nil {
			ws.Ports = canaried.PortSplits(svc.Fields, lives, w.Service, rel.Namespace, m.Domain)
		}
		if meshDrift != "" {
			ws.Drift = append(ws.Drift, meshDrift)
		}
		st.Workloads = append(st.Workloads, ws)
	}
	return st, nil
}

// deploymentsStatus fills in a workload's replicas, readiness and images as live,
// and their drift from the release.
func deploymentsStatus(ctx context.Context, cs kubernetes.Interface, namespace string, w canaried.Workload, ws *WorkloadStatus) error {
	for _, side := range []struct {
		desired  canaried.Object
		replicas *int
		ready    *int
		images   *[]string
		version  *string
	}{
		{w.Production, &ws.Replicas.Production, &ws.Ready.Production, &ws.Images.Production, &ws.Versions.Production},
		{w.Canary, &ws.Replicas.Canary, &ws.Ready.Canary, &ws.Images.Canary, &ws.Versions.Canary},
	} {
		name := side.desired.Name
		wantImages := canaried.Images(side.desired.Fields)
		*side.version = canaried.Version(side.desired.Fields)
		wantReplicas, fixed := canaried.Replicas(side.desired.Fields)
		live, err := cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			ws.Drift = append(ws.Drift, fmt.Sprintf("Deployment %s is missing from the cluster", name))
			*side.images = wantImages
			continue
		}
		if err != nil {
			return fmt.Errorf("Deployment %s/%s: %w", namespace, name, permissionHint(err))
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
		if err != nil {
			return err
		}
		gotImages := canaried.Images(u)
		*side.version = canaried.Version(u)
		gotReplicas, hasReplicas := canaried.Replicas(u)
		*side.images = gotImages
		*side.ready = int(live.Status.ReadyReplicas)
		if hasReplicas {
			*side.replicas = gotReplicas
		}
		if !fixed {
			ws.Autoscaled = true
			*side.replicas = int(live.Status.Replicas)
		} else if !hasReplicas || gotReplicas != wantReplicas {
			got := "no"
			if hasReplicas {
				got = fmt.Sprint(gotReplicas)
			}
			ws.Drift = append(ws.Drift, fmt.Sprintf("Deployment %s has %s replicas, the release says %d", name, got, wantReplicas))
		}
		if !slices.Equal(gotImages, wantImages) {
			ws.Drift = append(ws.Drift, fmt.Sprintf("Deployment %s runs %s, the release says %s", name, strings.Join(gotImages, ", "), strings.Join(wantImages, ", ")))
		}
	}
	return nil
}

// routingStatus reads a workload's live traffic split and reports drift of the
// routing objects that carry it: the VirtualServices that route to its Service and
// its DestinationRule, whose subsets decide which pods production and canary are.
// It returns those VirtualServices as live.
func routingStatus(ctx context.Context, dyn dynamic.Interface, m *canaried.Manifest, w canaried.Workload, ws *WorkloadStatus) ([]map[string]any, error) {
	var lives []map[string]any
	ws.Weights = Split{Production: 100}
	first := true
	for _, vs := range m.Of("VirtualService") {
		want := canaried.Routes(vs.Fields, w.Service, m.NamespaceOf(vs), m.Domain)
		if len(want) == 0 {
			continue
		}
		live, found, err := liveObject(ctx, dyn, m, vs)
		if err != nil {
			return nil, err
		}
		if !found {
			ws.Drift = append(ws.Drift, fmt.Sprintf("VirtualService %s is missing from the cluster", vs.Name))
			continue
		}
		lives = append(lives, live)
		got := canaried.Routes(live, w.Service, m.NamespaceOf(vs), m.Domain)
		if split, ok := canaried.TrafficSplit(live, w.Service, m.NamespaceOf(vs), m.Domain); first && ok {
			ws.Weights, first = split, false
		}
		switch {
		case fmt.Sprint(got) != fmt.Sprint(want):
			ws.Drift = append(ws.Drift, fmt.Sprintf("VirtualService %s routes %s, the release says %s", vs.Name, canaried.FormatSplits(got), canaried.FormatSplits(want)))
		default:
			if fields := specDiffers(vs.Fields, live); len(fields) > 0 {
				ws.Drift = append(ws.Drift, fmt.Sprintf("VirtualService %s differs from the release in spec.%s", vs.Name, strings.Join(fields, ", spec.")))
			}
		}
	}
	if dr := w.DestinationRule; dr != nil {
		live, found, err := liveObject(ctx, dyn, m, *dr)
		if err != nil {
			return nil, err
		}
		switch want, got := subsets(dr.Fields), subsets(live); {
		case !found:
			ws.Drift = append(ws.Drift, fmt.Sprintf("DestinationRule %s is missing from the cluster", dr.Name))
		case want != got:
			ws.Drift = append(ws.Drift, fmt.Sprintf("DestinationRule %s has subsets %s, the release says %s", dr.Name, got, want))
		default:
			if fields := specDiffers(dr.Fields, live); len(fields) > 0 {
				ws.Drift = append(ws.Drift, fmt.Sprintf("DestinationRule %s differs from the release in spec.%s", dr.Name, strings.Join(fields, ", spec.")))
			}
		}
	}
	return lives, nil
}

// liveObject reads the live object of a routing object of the manifest; found is
// false when it does not exist.
func liveObject(ctx context.Context, dyn dynamic.Interface, m *canaried.Manifest, o canaried.Object) (map[string]any, bool, error) {
	gvr, ok := istioResource(o)
	if !ok {
		return nil, false, fmt.Errorf("%s %s: not an Istio routing object", o.Kind, o.Name)
	}
	ns := m.NamespaceOf(o)
	live, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s %s/%s: %w", o.Kind, ns, o.Name, permissionHint(err))
	}
	return live.Object, true, nil
}

// subsets prints a DestinationRule's subsets as "production{k=v}, canary{k=v}".
func subsets(dr map[string]any) string {
	list, _ := canaried.Dig(dr, "spec", "subsets").([]any)
	var parts []string
	for _, s := range list {
		labels, _ := canaried.Dig(s, "labels").(map[string]any)
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			kv = append(kv, fmt.Sprintf("%s=%v", k, labels[k]))
		}
		parts = append(parts, fmt.Sprintf("%v{%s}", canaried.Dig(s, "name"), strings.Join(kv, ",")))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// specDiffers lists the top-level spec fields in which a live object differs from
// the manifest's.
func specDiffers(want, live map[string]any) []string {
	w, _ := normalize(want["spec"]).(map[string]any)
	g, _ := normalize(live["spec"]).(map[string]any)
	keys := map[string]bool{}
	for k := range w {
		keys[k] = true
	}
	for k := range g {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if !reflect.DeepEqual(w[k], g[k]) {
			out = append(out, k)
		}
	}
	return out
}

// dig is canaried.Dig: one walk over decoded values for the whole tool.
var dig = canaried.Dig

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

// trackLabel is the track label key a canary block uses.
func trackLabel(c renderer.Config) string {
	if c.TrackLabel == "" {
		return renderer.DefaultTrackLabel
	}
	return c.TrackLabel
}
