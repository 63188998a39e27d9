package e2e

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestHostsWithNamespaceAndDomain: test/charts/storefront names its cart-api by
// FQDN in the release's namespace and the chart's clusterDomain, and routes
// /partner to another namespace's Service of the same name. Moved to stage 10 with
// Helm 3 and 4 through the plugin (helm canary stage -n NS hands the renderer the
// namespace; canary.clusterDomain the domain) and through a pipeline's
// post-renderer (render --namespace, --cluster-domain): the chart's own
// DestinationRule and VirtualService are split in place, with no second one for the
// host; the partner route is left as written; status reads the 90/10 split and the
// route simulator finds the Service by its FQDN, through the same host matcher (a
// pipeline's release, without a canary: block, by the domain the renderer
// recorded on the canary).
func TestHostsWithNamespaceAndDomain(t *testing.T) {
	for _, tc := range []struct {
		name, domain string
		pipeline     bool
	}{
		{"plugin", "", false},
		{"plugin-corp-domain", "corp.example", false},
		{"pipeline-corp-domain", "corp.example", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
				chart := filepath.Join(h.checkout, "test", "charts", "storefront")
				domain := tc.domain
				if domain == "" {
					domain = "cluster.local"
				}
				for _, step := range []struct{ stage, tag string }{{"stable", "1.0"}, {"10", "1.1"}} {
					sets := "image.tag=" + step.tag + ",clusterDomain=" + domain
					if tc.pipeline {
						args := []string{"upgrade", "--install", "front", chart, "-n", ns, "--set", sets}
						renderArgs := []string{"--stage=" + step.stage, "--release=front", "--namespace=" + ns}
						if tc.domain != "" {
							renderArgs = append(renderArgs, "--cluster-domain="+tc.domain)
						}
						h.mustRun(t, append(args, h.postRenderer(renderArgs...)...)...)
						continue
					}
					if tc.domain != "" {
						sets += ",canary.clusterDomain=" + tc.domain
					}
					h.stage(t, ns, step.stage, "front", chart, "--install", "--set", sets)
				}

				fqdn := "cart-api." + ns + ".svc." + domain
				if got := names(t, virtualServices, ns); !slices.Equal(got, []string{"cart-api", "storefront"}) {
					t.Errorf("VirtualServices %v, want the chart's cart-api and storefront only", got)
				}
				if got := names(t, destinationRules, ns); !slices.Equal(got, []string{"cart-api"}) {
					t.Errorf("DestinationRules %v, want the chart's cart-api only", got)
				}
				wantWeights(t, ns, "cart-api", map[string]int64{"production": 90, "canary": 10})
				front := getIstio(t, virtualServices, ns, "storefront")
				routes, _, _ := unstructured.NestedSlice(front.Object, "spec", "http")
				if len(routes) != 2 {
					t.Fatalf("VirtualService storefront: %d http routes, want 2: %v", len(routes), routes)
				}
				partner, _, _ := unstructured.NestedSlice(routes[1].(map[string]any), "route")
				want := []any{map[string]any{"destination": map[string]any{"host": "cart-api.partner-team.svc." + domain, "port": map[string]any{"number": int64(8080)}}}}
				if !jsonEqual(partner, want) {
					t.Errorf("the /partner route to another namespace's cart-api was rewritten: %v, want %v", partner, want)
				}

				var st struct {
					Workloads []struct {
						Name    string         `json:"name"`
						Weights map[string]int `json:"weights"`
					} `json:"workloads"`
				}
				out := h.mustRun(t, "canary", "status", "front", "-n", ns, "-o", "json")
				if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Workloads) != 1 {
					t.Fatalf("status -o json: %v\n%s", err, out)
				}
				if w := st.Workloads[0].Weights; w["production"] != 90 || w["canary"] != 10 {
					t.Errorf("status: cart weights %v, want 90/10\n%s", w, out)
				}

				// A pipeline's release has no canary.clusterDomain: status and route
				// read the domain the renderer recorded.
				var res routeResult
				out = h.mustRun(t, "canary", "route", "front", "-n", ns, "--host", fqdn, "-o", "json")
				if err := json.Unmarshal([]byte(out), &res); err != nil || res.VirtualService != "cart-api" || res.Shares["canary"] != 0.1 {
					t.Errorf("route --host %s: %+v (%v), want VirtualService cart-api at 10%% canary", fqdn, res, err)
				}
				if _, stderr, err := h.run(t, "canary", "route", "front", "-n", ns, "--host", "cart-api.partner-team.svc."+domain); err == nil || !strings.Contains(stderr, "no VirtualService") {
					t.Errorf("route --host for the partner's cart-api: err %v, stderr %s; want no VirtualService of this release", err, stderr)
				}
			})
		})
	}
}

// names lists the names of the objects of a resource in a namespace, sorted.
func names(t *testing.T, gvr schema.GroupVersionResource, ns string) []string {
	t.Helper()
	list, err := clients(t).dynamic.Resource(gvr).Namespace(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, item := range list.Items {
		out = append(out, item.GetName())
	}
	slices.Sort(out)
	return out
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
