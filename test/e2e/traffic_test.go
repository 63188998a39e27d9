package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTCPAndTLSPorts: a redis-like chart (test/charts/kvstore: tcp-redis, tls-redis
// and a sniffed metrics port) walked to stage 10 with Helm 3 and Helm 4. The live
// VirtualService splits each TCP and TLS port with a tcp or tls route of the stage
// weights (Istio ignores http routes there), status reports the split per port, and
// route --port follows the tcp and tls routes.
func TestTCPAndTLSPorts(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := filepath.Join(h.checkout, "test", "charts", "kvstore")
		h.stage(t, ns, "stable", "cache", chart, "--install")
		out := h.stage(t, ns, "10", "cache", "--set", "image.tag=7.4.2")
		t.Logf("stage 10:\n%s", out)

		vs, err := clients(t).dynamic.Resource(virtualServices).Namespace(ns).Get(context.Background(), "cache-kv", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec := vs.Object["spec"].(map[string]any)
		for _, section := range []struct {
			name  string
			ports []int64
		}{{"tcp", []int64{6379, 9121}}, {"tls", []int64{6380}}} {
			routes, _ := spec[section.name].([]any)
			if len(routes) != len(section.ports) {
				t.Fatalf("live VirtualService cache-kv has %d %s routes, want %d: %v", len(routes), section.name, len(section.ports), spec)
			}
			for i, r := range routes {
				route := r.(map[string]any)
				match := route["match"].([]any)[0].(map[string]any)
				if match["port"] != section.ports[i] {
					t.Errorf("%s route %d matches port %v, want %d", section.name, i, match["port"], section.ports[i])
				}
				got := map[string]int64{}
				for _, d := range route["route"].([]any) {
					dm := d.(map[string]any)
					got[dm["destination"].(map[string]any)["subset"].(string)] = dm["weight"].(int64)
				}
				if got["production"] != 90 || got["canary"] != 10 {
					t.Errorf("%s route %d weights %v, want production 90 canary 10", section.name, i, got)
				}
			}
		}

		status := h.mustRun(t, "canary", "status", "cache", "-n", ns)
		t.Logf("status:\n%s", status)
		for _, want := range []string{"PORT cache-kv 6379/tcp-redis TCP: 90/10 (tcp route)", "PORT cache-kv 6380/tls-redis TLS: 90/10 (tls route)"} {
			if !strings.Contains(status, want) {
				t.Errorf("status does not say %q", want)
			}
		}
		var st struct {
			Workloads []struct {
				Weights struct{ Production, Canary int }
				Ports   []struct {
					Port    int
					Route   string
					Weights *struct{ Production, Canary int }
				}
			}
		}
		if err := json.Unmarshal([]byte(h.mustRun(t, "canary", "status", "cache", "-n", ns, "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Workloads) != 1 || len(st.Workloads[0].Ports) != 3 {
			t.Fatalf("status -o json: %+v", st)
		}
		for _, p := range st.Workloads[0].Ports {
			if p.Weights == nil || p.Weights.Production != 90 || p.Weights.Canary != 10 {
				t.Errorf("status port %d: %+v, want 90/10", p.Port, p)
			}
		}

		route := h.mustRun(t, "canary", "route", "cache", "-n", ns, "--host", "cache-kv", "--port", "6379")
		if !strings.Contains(route, "cache-kv:6379 (TCP)") || !strings.Contains(route, "route tcp[0]") || !strings.Contains(route, "canary        10.00%") {
			t.Errorf("route --port 6379:\n%s", route)
		}
		route = h.mustRun(t, "canary", "route", "cache", "-n", ns, "--host", "cache-kv", "--port", "6380", "--sni", "redis.example.com")
		if !strings.Contains(route, "by pod count") {
			t.Errorf("route --port 6380 with a foreign SNI does not say it goes by pod count:\n%s", route)
		}
	})
}

// TestSharedServiceAndOutsideTraffic: canarying one of two Deployments behind one
// Service without per-Deployment routes is refused (nothing changes); a
// LoadBalancer Service is warned about once per Service.
func TestSharedServiceAndOutsideTraffic(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		two := filepath.Join(h.checkout, "test", "charts", "twoversions")
		// By default neither Deployment is canaried (one Service over both).
		h.stage(t, ns, "stable", "web", two, "--install")
		versions := func() map[string]string {
			out := map[string]string{}
			for _, name := range []string{"web-v1", "web-v2"} {
				_, out[name] = getDeploymentVersion(t, ns, name)
			}
			return out
		}
		revisions, live := storedRevisions(t, "web", ns), versions()
		_, stderr, err := h.run(t, "canary", "stage", "-n", ns, "10", "web", "--workload", "web-v2", "--set", "tag=2")
		if err == nil || !strings.Contains(stderr, "cut web-v1 off") || !strings.Contains(stderr, "Service web selects the pods of Deployment web-v2") {
			t.Errorf("canarying web-v2 alone: err %v, stderr:\n%s", err, stderr)
		}
		if after := storedRevisions(t, "web", ns); !maps.Equal(after, revisions) {
			t.Errorf("the refused stage changed the release's revisions: %v, were %v", after, revisions)
		}
		if after := versions(); !maps.Equal(after, live) {
			t.Errorf("the refused stage wrote the Deployments: %v, were %v", after, live)
		}

		edge := filepath.Join(h.checkout, "test", "charts", "edge")
		_, stderr, err = h.run(t, "canary", "stage", "-n", ns, "10", "edge", edge, "--install")
		if err != nil {
			t.Fatalf("edge at 10: %v\n%s", err, stderr)
		}
		t.Logf("edge at 10, stderr:\n%s", stderr)
		if n := strings.Count(stderr, "Service edge-controller is of type LoadBalancer"); n != 1 {
			t.Errorf("%d warnings that the LoadBalancer Service bypasses the mesh's routing, want 1:\n%s", n, stderr)
		}
		for _, line := range strings.Split(stderr, "\n") {
			if strings.Contains(line, "of type LoadBalancer") && !strings.Contains(line, "only traffic from the mesh and through Istio gateways follows the stage weights") {
				t.Errorf("warning %q does not say what follows the weights", line)
			}
		}
	})
}
