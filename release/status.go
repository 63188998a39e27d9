package release

import (
	"context"
	"fmt"
	"slices"
	"strings"

	helmrelease "helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/helm-canary/helm-canary/canaried"
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
	// Ports is the split of each port of the Service, by the route Istio applies
	// to its protocol (http, tcp, tls), or none: then by pod count.
	Ports []canaried.PortSplit `json:"ports,omitempty"`
	// Replicas are the desired counts, Ready the ready ones.
	Replicas Split `json:"replicas"`
	Ready    Split `json:"ready"`
	// Autoscaled is true when an autoscaler owns the replica counts.
	Autoscaled bool     `json:"autoscaled,omitempty"`
	Images     Images   `json:"images"`
	Drift      []string `json:"drift,omitempty"`
}

// Split is a production/canary pair.
type Split = canaried.Split

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
	m, err := canaried.Read([]byte(rel.Manifest), rel.Namespace)
	if err != nil {
		return nil, err
	}
	cs, dyn, err := c.clients()
	if err != nil {
		return nil, err
	}
	for _, w := range m.Workloads(track) {
		ws := WorkloadStatus{Name: w.Name, Service: w.Service, Stage: st.Stage}
		if _, staged := rel.Config[ValuesKey]; !staged {
			// Pipeline mode keeps the stage in the pipeline's arguments.
			at := m.Stage(w)
			ws.Stage = at.Stage.String()
			if st.Stage == "stable" {
				st.Stage, st.Draining = ws.Stage, at.Draining
			}
			if at.Draining {
				ws.Stage += " (draining)"
			}
		}
		if own := config.Workloads[w.Name]; own.Stage != "" {
			ws.Stage = own.Stage
			if own.Draining {
				ws.Stage += " (draining)"
			}
		}
		for _, side := range []struct {
			desired  canaried.Object
			replicas *int
			ready    *int
			images   *[]string
		}{
			{w.Production, &ws.Replicas.Production, &ws.Ready.Production, &ws.Images.Production},
			{w.Canary, &ws.Replicas.Canary, &ws.Ready.Canary, &ws.Images.Canary},
		} {
			name := side.desired.Name
			wantImages := canaried.Images(side.desired.Fields)
			wantReplicas, fixed := canaried.Replicas(side.desired.Fields)
			live, err := cs.AppsV1().Deployments(rel.Namespace).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				ws.Drift = append(ws.Drift, fmt.Sprintf("Deployment %s is missing from the cluster", name))
				*side.images = wantImages
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("Deployment %s: %w", name, err)
			}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
			if err != nil {
				return nil, err
			}
			gotImages := canaried.Images(u)
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
		ws.Weights = Split{Production: 100}
		first := true
		var lives []map[string]any
		for _, vs := range m.Of("VirtualService") {
			want := canaried.Routes(vs.Fields, w.Service, rel.Namespace)
			if len(want) == 0 {
				continue
			}
			live, err := dyn.Resource(vsResource).Namespace(rel.Namespace).Get(ctx, vs.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				ws.Drift = append(ws.Drift, fmt.Sprintf("VirtualService %s is missing from the cluster", vs.Name))
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("VirtualService %s: %w", vs.Name, err)
			}
			lives = append(lives, live.Object)
			got := canaried.Routes(live.Object, w.Service, rel.Namespace)
			if split, ok := canaried.TrafficSplit(live.Object, w.Service, rel.Namespace); first && ok {
				ws.Weights, first = split, false
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				ws.Drift = append(ws.Drift, fmt.Sprintf("VirtualService %s routes %s, the release says %s", vs.Name, canaried.FormatSplits(got), canaried.FormatSplits(want)))
			}
		}
		if svc := m.Get("Service", w.Service); svc != nil {
			ws.Ports = canaried.PortSplits(svc.Fields, lives, w.Service, rel.Namespace)
		}
		st.Workloads = append(st.Workloads, ws)
	}
	return st, nil
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

// trackLabel is the track label key a canary block uses.
func trackLabel(c renderer.Config) string {
	if c.TrackLabel == "" {
		return renderer.DefaultTrackLabel
	}
	return c.TrackLabel
}
