package canaried

import (
	"strings"
	"testing"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// A redis-like Service with a TCP port, a TLS port, a sniffed port and a UDP port:
// what the renderer writes is read back port by port, and a port no route splits
// says so instead of reporting the stage weights.
const kv = `apiVersion: v1
kind: Service
metadata: {name: kv, namespace: cache}
spec:
  selector: {app: kv}
  ports:
  - {name: tcp-redis, port: 6379}
  - {name: https-admin, port: 8443}
  - {name: metrics, port: 9121}
  - {name: gossip, port: 7946, protocol: UDP}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kv, namespace: cache}
spec:
  replicas: 2
  selector: {matchLabels: {app: kv}}
  template:
    metadata: {labels: {app: kv}}
    spec: {containers: [{name: kv, image: redis:7}]}
`

func TestPortSplits(t *testing.T) {
	stage, _ := stages.Parse("10")
	res, err := renderer.Render([]byte(kv), renderer.Options{Stage: stage})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Read(res.Manifest, "cache")
	if err != nil {
		t.Fatal(err)
	}
	ws := m.Workloads("")
	if len(ws) != 1 {
		t.Fatalf("workloads %v", ws)
	}
	if s := m.Weights(ws[0]); s != (Split{90, 10}) {
		t.Errorf("the workload's split %v, want 90/10 from its tcp route (no http port)", s)
	}
	got := FormatPorts(m.Ports(ws[0]))
	for _, want := range []string{
		"6379/tcp-redis TCP: 90/10 (tcp route)",
		"8443/https-admin HTTPS: 90/10 (tls route); TLS connections with another SNI go by pod count",
		"9121/metrics detected: 90/10 (http+tcp route)",
		"7946/gossip UDP: by pod count; Istio does not proxy UDP",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ports %q lack %q", got, want)
		}
	}
	ports := m.Ports(ws[0])
	if len(ports[1].SNI) != 4 || ports[1].SNI[3] != "kv.cache.svc.cluster.local" {
		t.Errorf("tls port SNI %v", ports[1].SNI)
	}
}

// Before this change, http routes were all a reader looked at: a Service with an
// http route and no tcp route for its TCP port reports that port by pod count.
func TestPortSplitsChartRoutesHTTPOnly(t *testing.T) {
	svc := map[string]any{"spec": map[string]any{"ports": []any{
		map[string]any{"name": "http", "port": float64(80)},
		map[string]any{"name": "tcp-db", "port": float64(5432)},
	}}}
	vs := map[string]any{"spec": map[string]any{"hosts": []any{"db"}, "http": []any{map[string]any{"route": []any{
		map[string]any{"destination": map[string]any{"host": "db", "subset": "production"}, "weight": float64(90)},
		map[string]any{"destination": map[string]any{"host": "db", "subset": "canary"}, "weight": float64(10)},
	}}}}}
	got := FormatPorts(PortSplits(svc, []map[string]any{vs}, "db", "", ""))
	if want := "80/http HTTP: 90/10 (http route); 5432/tcp-db TCP: by pod count; no tcp route for the port"; got != want {
		t.Errorf("ports %q, want %q", got, want)
	}
}
