package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	productpageImage = "docker.io/istio/examples-bookinfo-productpage-v1"
	trackLabel       = "helm-canary.io/track"
)

// TestPipelineMode drives an existing `helm upgrade` pipeline with helm-canary as
// the post-renderer, as the README shows it for each Helm version: install at
// stable with tag 83, then stage 10 with tag 84 and production pinned from the
// release's manifest, then a bad stage that must leave the release alone.
func TestPipelineMode(t *testing.T) {
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			h := newHelmEnv(t, major)
			ns := newNamespace(t)
			chart := filepath.Join(h.checkout, "examples", "productpage")
			upgrade := func(tag string, renderArgs ...string) []string {
				args := []string{"upgrade", "--install", "pp", chart, "-n", ns, "--set", "image.tag=" + tag}
				return append(args, h.postRenderer(renderArgs...)...)
			}

			// 1. Install at stable: one production Deployment, the canary at zero.
			h.mustRun(t, upgrade("83", "--stage=stable")...)
			production := getDeployment(t, ns, "productpage")
			wantImages(t, "productpage", production, productpageImage+":83")
			wantReplicas(t, "productpage", production, 2)
			wantLabel(t, "productpage pod template", production.PodLabels, trackLabel, "production")
			// Selectors are immutable: changing production's would break upgrades of
			// releases installed without helm-canary.
			wantLabels(t, "productpage selector", production.Selector, map[string]string{"app": "productpage"})
			wantReplicas(t, "productpage-canary", getDeployment(t, ns, "productpage-canary"), 0)
			subsets := getSubsets(t, ns, "product-page-svc")
			wantLabel(t, "DestinationRule subset production", subsets["production"], trackLabel, "production")
			wantLabel(t, "DestinationRule subset canary", subsets["canary"], trackLabel, "canary")
			weights := getRouteWeights(t, ns, "product-page-svc")
			// All traffic to production, by subset or (before production's pods carry
			// the track label) by host.
			if weights["canary"] != 0 || weights["production"]+weights[""] != 100 {
				t.Errorf("VirtualService product-page-svc at stable: weights %v, want all to production", weights)
			}

			// 2. Stage 10 with tag 84: the new tag reaches only the canary.
			manifest := filepath.Join(t.TempDir(), "pp.yaml")
			if err := os.WriteFile(manifest, []byte(h.mustRun(t, "get", "manifest", "pp", "-n", ns)), 0o644); err != nil {
				t.Fatal(err)
			}
			h.mustRun(t, upgrade("84", "--stage=10", "--production-from="+manifest)...)
			production = getDeployment(t, ns, "productpage")
			wantImages(t, "productpage", production, productpageImage+":83")
			wantReplicas(t, "productpage", production, 2)
			wantLabel(t, "productpage pod template", production.PodLabels, trackLabel, "production")
			wantLabels(t, "productpage selector", production.Selector, map[string]string{"app": "productpage"})
			canary := getDeployment(t, ns, "productpage-canary")
			wantImages(t, "productpage-canary", canary, productpageImage+":84")
			wantReplicas(t, "productpage-canary", canary, 2)
			wantLabel(t, "productpage-canary pod template", canary.PodLabels, trackLabel, "canary")
			wantLabel(t, "productpage-canary selector", canary.Selector, trackLabel, "canary")
			wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})

			// 3. A bad stage fails the helm command and changes nothing.
			before := h.lastRevision(t, "pp", ns)
			_, stderr, err := h.run(t, upgrade("85", "--stage=bogus", "--production-from="+manifest)...)
			if err == nil {
				t.Fatal("helm upgrade with --stage=bogus succeeded, want a failure")
			}
			if after := h.lastRevision(t, "pp", ns); after != before {
				t.Errorf("after the failed upgrade the last revision is %+v, want %+v unchanged", after, before)
			}
			wantImages(t, "productpage-canary", getDeployment(t, ns, "productpage-canary"), productpageImage+":84")
			const why = `unknown stage "bogus"`
			if major == 3 {
				// Helm 3 shows the post-renderer's stderr.
				if !strings.Contains(stderr, why) {
					t.Errorf("helm3 stderr does not say %q:\n%s", why, stderr)
				}
				return
			}
			// Helm 4 discards it and names the plugin; the wrapper's log has the reason.
			if !strings.Contains(stderr, postRendererPlugin) {
				t.Errorf("helm4 stderr does not name %s:\n%s", postRendererPlugin, stderr)
			}
			log, err := os.ReadFile(h.postRendererLog())
			if err != nil {
				t.Fatalf("the post-renderer log: %v", err)
			}
			if !strings.Contains(string(log), why) || !strings.Contains(string(log), "--stage=bogus") {
				t.Errorf("%s does not record the failure (%q, with its arguments):\n%s", h.postRendererLog(), why, log)
			}
		})
	}
}

func wantImages(t *testing.T, what string, d liveDeployment, images ...string) {
	t.Helper()
	got := slices.Sorted(maps.Values(d.Images))
	slices.Sort(images)
	if !slices.Equal(got, images) {
		t.Errorf("%s images: %v, want %v", what, got, images)
	}
}

func wantReplicas(t *testing.T, what string, d liveDeployment, want int32) {
	t.Helper()
	if d.Replicas != want {
		t.Errorf("%s replicas: %d, want %d", what, d.Replicas, want)
	}
}

func wantLabel(t *testing.T, what string, labels map[string]string, key, want string) {
	t.Helper()
	if got, ok := labels[key]; !ok || got != want {
		t.Errorf("%s: label %s=%q (present: %t), want %q; all labels: %v", what, key, got, ok, want, labels)
	}
}

func wantLabels(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func wantWeights(t *testing.T, namespace, name string, want map[string]int64) {
	t.Helper()
	if got := getRouteWeights(t, namespace, name); !maps.Equal(got, want) {
		t.Errorf("VirtualService %s/%s default route weights: %v, want %v", namespace, name, got, want)
	}
}
