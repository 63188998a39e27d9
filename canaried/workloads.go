package canaried

import (
	"strings"

	"github.com/helm-canary/helm-canary/renderer"
)

// Workload is one canaried Deployment of a manifest: production D and canary
// D-canary, whose selector carries the track label's canary value.
type Workload struct {
	// Name is the production Deployment's; the canary's is Name+renderer.CanarySuffix.
	Name               string
	Production, Canary Object
	// DestinationRule is the one with a canary subset selecting the canary's pods,
	// nil when the manifest routes none; Service is the short name of its host.
	DestinationRule *Object
	Service         string
}

// CanaryName is the canary Deployment's name.
func (w Workload) CanaryName() string { return w.Canary.Name }

// Workloads finds the canaried Deployments of a manifest, in manifest order. track
// is the track label key the release uses (renderer.DefaultTrackLabel when unset).
func (m *Manifest) Workloads(track string) []Workload {
	if track == "" {
		track = renderer.DefaultTrackLabel
	}
	var out []Workload
	seen := map[string]bool{}
	for _, d := range m.Of("Deployment") {
		if seen[d.Name] {
			continue
		}
		canary := m.Get("Deployment", d.Name+renderer.CanarySuffix)
		if canary == nil || str(Dig(canary.Fields, "spec", "selector", "matchLabels", track)) != renderer.TrackCanary {
			continue
		}
		seen[d.Name] = true
		// The last Deployment of a name is the one that counts (see Get).
		w := Workload{Name: d.Name, Production: *m.Get("Deployment", d.Name), Canary: *canary}
		podLabels, _ := Dig(canary.Fields, "spec", "template", "metadata", "labels").(map[string]any)
		for i, dr := range m.Objects {
			if dr.Kind != "DestinationRule" {
				continue
			}
			subsets, _ := Dig(dr.Fields, "spec", "subsets").([]any)
			for _, s := range subsets {
				labels, _ := Dig(s, "labels").(map[string]any)
				if str(Dig(s, "name")) == renderer.SubsetCanary && labelsWithin(labels, podLabels) {
					w.DestinationRule = &m.Objects[i]
					w.Service, _, _ = strings.Cut(str(Dig(dr.Fields, "spec", "host")), ".")
				}
			}
		}
		out = append(out, w)
	}
	return out
}

// Workload is the canaried workload of a production Deployment's name, or nil.
func (m *Manifest) Workload(track, name string) *Workload {
	for _, w := range m.Workloads(track) {
		if w.Name == name {
			return &w
		}
	}
	return nil
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

// Replicas is a Deployment's spec.replicas; ok is false when it has none (an
// autoscaler owns the count).
func Replicas(deployment map[string]any) (n int, ok bool) {
	return toInt(Dig(deployment, "spec", "replicas"))
}

// canonicalRevision are the pod labels Istio takes a workload's canonical
// revision from, in its order (istio.io/istio pkg/kube/labels).
var canonicalRevision = []string{"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"}

// Version is the version Istio's telemetry reports for a Deployment's pods (the
// canonical revision): the first of canonicalRevision its pod template carries,
// else "latest".
func Version(deployment map[string]any) string {
	labels, _ := Dig(deployment, "spec", "template", "metadata", "labels").(map[string]any)
	for _, key := range canonicalRevision {
		if v, ok := labels[key]; ok {
			return str(v)
		}
	}
	return "latest"
}

// Images are the images of a Deployment's containers, in order.
func Images(deployment map[string]any) []string {
	var out []string
	containers, _ := Dig(deployment, "spec", "template", "spec", "containers").([]any)
	for _, c := range containers {
		out = append(out, str(Dig(c, "image")))
	}
	return out
}
