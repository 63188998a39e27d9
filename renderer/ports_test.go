package renderer

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Istio's rules of protocol selection, as istio.io documents them and
// pkg/config/kube ConvertProtocol applies them.
func TestIstioProtocol(t *testing.T) {
	for _, tt := range []struct {
		name, appProtocol, protocol string
		number                      uint32
		want, class                 string
	}{
		{"http", "", "", 80, "HTTP", routeHTTP},
		{"http-web", "", "TCP", 8080, "HTTP", routeHTTP},
		{"HTTP2-x", "", "", 81, "HTTP2", routeHTTP},
		{"grpc", "", "", 9090, "GRPC", routeHTTP},
		{"grpc-web-ui", "", "", 9091, "GRPC-Web", routeHTTP},
		{"http_proxy", "", "", 3128, "HTTP_PROXY", routeHTTP},
		{"tcp-redis", "", "", 6379, "TCP", routeTCP},
		{"redis", "", "", 6379, "Redis", routeTCP},
		{"mongo", "", "", 27017, "Mongo", routeTCP},
		{"mysql", "", "", 3306, "MySQL", routeTCP},
		{"https", "", "", 443, "HTTPS", routeTLS},
		{"tls-passthrough", "", "", 8443, "TLS", routeTLS},
		{"web", "", "", 80, "", routeAuto},
		{"", "", "", 8080, "", routeAuto},
		// Well-known server-first ports are TCP when nothing names a protocol.
		{"db", "", "", 3306, "TCP", routeTCP},
		{"", "", "", 27017, "TCP", routeTCP},
		{"smtp", "", "", 25, "TCP", routeTCP},
		// appProtocol wins over the name.
		{"http", "tcp", "", 80, "TCP", routeTCP},
		{"database", "mysql", "", 3306, "MySQL", routeTCP},
		{"tcp-x", "http", "", 80, "HTTP", routeHTTP},
		{"web", "kubernetes.io/h2c", "", 80, "HTTP2", routeHTTP},
		{"web", "kubernetes.io/ws", "", 80, "HTTP", routeHTTP},
		{"web", "kubernetes.io/wss", "", 443, "HTTPS", routeTLS},
		{"web", "example.com/custom", "", 80, "", routeAuto},
		// UDP is never proxied, whatever the name says.
		{"http", "", "UDP", 53, "UDP", routeNone},
		{"dns", "", "UDP", 53, "UDP", routeNone},
		{"sctp", "", "SCTP", 9, "SCTP", routeNone},
	} {
		got := IstioProtocol(tt.name, tt.appProtocol, tt.protocol, tt.number)
		if got != tt.want || RouteClass(got) != tt.class {
			t.Errorf("port %d name %q appProtocol %q protocol %q: %q (%s), want %q (%s)",
				tt.number, tt.name, tt.appProtocol, tt.protocol, got, RouteClass(got), tt.want, tt.class)
		}
	}
}

// kvChart is a redis-like chart: one Deployment, a Service whose ports are given.
func kvChart(ports, extra string) string {
	return `---
# Source: kv/templates/svc.yaml
apiVersion: v1
kind: Service
metadata:
  name: kv
  namespace: cache
spec:
  selector:
    app: kv
  ports:
` + ports + extra + `---
# Source: kv/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kv
  namespace: cache
spec:
  replicas: 2
  selector:
    matchLabels:
      app: kv
  template:
    metadata:
      labels:
        app: kv
    spec:
      containers:
      - name: kv
        image: redis:7
`
}

// routeWeights reads the production/canary weights and destination port of one
// route of a VirtualService section.
func routeWeights(t *testing.T, vs *yaml.RNode, section string, i int) (weights map[string]string, port string) {
	t.Helper()
	routes := lookup(vs.YNode(), "spec", section)
	if routes == nil || len(routes.Content) <= i {
		t.Fatalf("VirtualService %s has no %s route %d:\n%s", vs.GetName(), section, i, vs.MustString())
	}
	weights = map[string]string{}
	for _, d := range field(routes.Content[i], "route").Content {
		dn := yaml.NewRNode(d)
		weights[stringAt(dn, "destination", "subset")] = stringAt(dn, "weight")
		port = stringAt(dn, "destination", "port", "number")
	}
	return weights, port
}

// A redis-like TCP Service: Istio ignores http routes on a TCP port, so the split
// must be a tcp route on that port, with the stage weights.
func TestTCPPortGetsWeightedTCPRoute(t *testing.T) {
	for _, ports := range []string{
		"  - name: tcp-redis\n    port: 6379\n",
		"  - name: redis\n    port: 6379\n",
		"  - name: db\n    port: 6379\n    appProtocol: tcp\n",
		"  - port: 27017\n",
	} {
		out := render(t, kvChart(ports, ""), Options{Stage: mustStage(t, "10")})
		vs := find(t, out, "VirtualService", "kv")
		if http := lookup(vs.YNode(), "spec", "http"); http != nil {
			t.Errorf("ports %q: a TCP-only Service got http routes, which Istio ignores:\n%s", ports, vs.MustString())
		}
		w, port := routeWeights(t, vs, "tcp", 0)
		want := strings.TrimSpace(strings.SplitN(strings.SplitN(ports, "port: ", 2)[1], "\n", 2)[0])
		if w["production"] != "90" || w["canary"] != "10" || port != want {
			t.Errorf("ports %q: tcp route weights %v port %s, want production 90 canary 10 on port %s", ports, w, port, want)
		}
		wantField(t, vs, "spec.tcp[0].match[0].port", want)
	}
}

// A TLS port the mesh passes through: tls routes matched on the SNI names a client
// of the Service may use, each also a host of the VirtualService.
func TestTLSPortGetsSNIRoute(t *testing.T) {
	res, err := Render([]byte(kvChart("  - name: https\n    port: 443\n    targetPort: 8443\n", "")), Options{Stage: mustStage(t, "90")})
	if err != nil {
		t.Fatal(err)
	}
	vs := find(t, string(res.Manifest), "VirtualService", "kv")
	names := "- kv\n- kv.cache\n- kv.cache.svc\n- kv.cache.svc.cluster.local"
	wantField(t, vs, "spec.hosts", names)
	wantField(t, vs, "spec.tls[0].match[0].sniHosts", names)
	wantField(t, vs, "spec.tls[0].match[0].port", "443")
	if w, port := routeWeights(t, vs, "tls", 0); w["production"] != "10" || w["canary"] != "90" || port != "443" {
		t.Errorf("tls route weights %v port %s, want production 10 canary 90 on port 443", w, port)
	}
	if lookup(vs.YNode(), "spec", "http") != nil || lookup(vs.YNode(), "spec", "tcp") != nil {
		t.Errorf("a TLS-only Service got http or tcp routes:\n%s", vs.MustString())
	}
	if !containsWarning(res.Warnings, "Service kv port 443 (https: HTTPS) carries TLS", "kv.cache.svc.cluster.local", "by pod count") {
		t.Errorf("no warning about the SNI the split depends on: %q", res.Warnings)
	}
}

// An HTTP port and a TCP port on one Service: the http route serves the first, a
// tcp route the second; a sniffed port gets both.
func TestMixedPorts(t *testing.T) {
	out := render(t, kvChart("  - name: http-metrics\n    port: 9121\n  - name: tcp-redis\n    port: 6379\n  - name: web\n    port: 8080\n", ""),
		Options{Stage: mustStage(t, "37")})
	vs := find(t, out, "VirtualService", "kv")
	if w := weights(t, vs, 0); w["production"] != "63" || w["canary"] != "37" {
		t.Errorf("http route weights %v", w)
	}
	wantField(t, vs, "spec.tcp[0].match[0].port", "6379")
	wantField(t, vs, "spec.tcp[1].match[0].port", "8080")
	if w, _ := routeWeights(t, vs, "tcp", 1); w["production"] != "63" || w["canary"] != "37" {
		t.Errorf("sniffed port's tcp route weights %v", w)
	}
	wantField(t, vs, "spec.hosts", "- kv") // no TLS port: no SNI names
}

// At stable the canary's weight 0 is written out on tcp routes too.
func TestTCPRouteAtStable(t *testing.T) {
	prod := render(t, kvChart("  - name: tcp\n    port: 6379\n", ""), Options{})
	out := render(t, kvChart("  - name: tcp\n    port: 6379\n", ""), Options{ProductionManifest: []byte(prod)})
	if w, _ := routeWeights(t, find(t, out, "VirtualService", "kv"), "tcp", 0); w["production"] != "100" || w["canary"] != "0" {
		t.Errorf("tcp weights at stable %v, want 100/0 with the 0 written", w)
	}
	// Before production is labeled: the bare host on the port, no subsets.
	vs := find(t, prod, "VirtualService", "kv")
	wantField(t, vs, "spec.tcp[0].route", "- destination:\n    host: kv\n    port:\n      number: 6379")
}

const kvVirtualService = `---
# Source: kv/templates/vs.yaml
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: kv-routes
  namespace: cache
spec:
  hosts:
  - kv.cache.svc.cluster.local
  tcp:
  - match:
    - port: 6379
    route:
    - destination:
        host: kv.cache.svc.cluster.local
        port:
          number: 6379
`

// The chart's own VirtualService: its tcp route to the host becomes the weighted
// pair on its port; a TCP port none of its routes covers gets a route appended.
func TestChartVirtualServiceTCP(t *testing.T) {
	ports := "  - name: tcp-redis\n    port: 6379\n  - name: tcp-sentinel\n    port: 26379\n"
	out := render(t, kvChart(ports, kvVirtualService), Options{Stage: mustStage(t, "10")})
	if n := count(t, out, "VirtualService"); n != 1 {
		t.Fatalf("%d VirtualServices, want the chart's only:\n%s", n, out)
	}
	vs := find(t, out, "VirtualService", "kv-routes")
	for i, port := range []string{"6379", "26379"} {
		w, p := routeWeights(t, vs, "tcp", i)
		if w["production"] != "90" || w["canary"] != "10" || p != port {
			t.Errorf("tcp route %d: weights %v port %s, want 90/10 on %s\n%s", i, w, p, port, vs.MustString())
		}
		wantField(t, vs, "spec.tcp["+string(rune('0'+i))+"].match[0].port", port)
	}
	wantField(t, vs, "spec.tcp[0].route[0].destination.host", "kv.cache.svc.cluster.local")
}

// A Service whose ports Istio does not proxy cannot be split: left alone with a
// warning by default, refused when named.
func TestUDPOnlyService(t *testing.T) {
	in := kvChart("  - name: dns\n    port: 53\n    protocol: UDP\n", "")
	res, err := Render([]byte(in), Options{Stage: mustStage(t, "10")})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Manifest) != in {
		t.Errorf("a Deployment behind a UDP-only Service was changed:\n%s", res.Manifest)
	}
	if !containsWarning(res.Warnings, "Deployment kv is not canaried", "UDP or SCTP only") {
		t.Errorf("warnings %q", res.Warnings)
	}
	err = renderErr(t, in, Options{Stage: mustStage(t, "10"), Workloads: []string{"kv"}})
	if !strings.Contains(err.Error(), "Deployment kv") || !strings.Contains(err.Error(), "drop --workload kv") {
		t.Errorf("error %q", err)
	}
	// A UDP port next to a TCP port: split the TCP one, say the other is not.
	res, err = Render([]byte(kvChart("  - name: dns\n    port: 53\n    protocol: UDP\n  - name: dns-tcp\n    port: 53\n", "")), Options{Stage: mustStage(t, "10")})
	if err != nil {
		t.Fatal(err)
	}
	wantField(t, find(t, string(res.Manifest), "VirtualService", "kv"), "spec.tcp[0].match[0].port", "53")
	if !containsWarning(res.Warnings, "Service kv port 53 (dns: UDP): Istio does not proxy UDP") {
		t.Errorf("warnings %q", res.Warnings)
	}
}

// LoadBalancer and NodePort Services take traffic from outside the mesh: one
// warning per Service, while canary pods run.
func TestExternallyReachableServiceWarns(t *testing.T) {
	for _, typ := range []string{"LoadBalancer", "NodePort"} {
		in := kvChart("  - name: http\n    port: 80\n", "  type: "+typ+"\n")
		res, err := Render([]byte(in), Options{Stage: mustStage(t, "10")})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, w := range res.Warnings {
			if strings.Contains(w, "Service kv is of type "+typ) && strings.Contains(w, "only traffic from the mesh and through Istio gateways follows the stage weights") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("type %s: %d warnings about it, want 1: %q", typ, n, res.Warnings)
		}
		// At stable no canary pods run: nothing to warn about.
		if res, _ := Render([]byte(in), Options{}); containsWarning(res.Warnings, "of type") {
			t.Errorf("type %s at stable warns: %q", typ, res.Warnings)
		}
	}
	res, _ := Render([]byte(kvChart("  - name: http\n    port: 80\n", "")), Options{Stage: mustStage(t, "10")})
	if containsWarning(res.Warnings, "of type") {
		t.Errorf("a ClusterIP Service warns: %q", res.Warnings)
	}
}

func containsWarning(warnings []string, parts ...string) bool {
	for _, w := range warnings {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(w, p)
		}
		if all {
			return true
		}
	}
	return false
}

// Rendering a stream with tcp and tls routes again gives the same stream: the
// appended routes cover their ports, and weighting them again changes nothing.
func TestL4RoutesIdempotent(t *testing.T) {
	in := kvChart("  - name: http\n    port: 80\n  - name: tcp-redis\n    port: 6379\n  - name: tls\n    port: 443\n", kvVirtualService)
	opts := Options{Stage: mustStage(t, "10")}
	once := render(t, in, opts)
	if twice := render(t, once, opts); twice != once {
		t.Errorf("render of the rendered stream differs:\n%s\n--- first:\n%s", twice, once)
	}
}

// A headless Service's TCP connections go to the pod the client picked: warned.
func TestHeadlessServiceWarns(t *testing.T) {
	res, err := Render([]byte(kvChart("  - name: tcp-redis\n    port: 6379\n", "  clusterIP: None\n")), Options{Stage: mustStage(t, "10")})
	if err != nil {
		t.Fatal(err)
	}
	if !containsWarning(res.Warnings, "Service kv is headless", "6379 (tcp-redis: TCP)", "by pod count") {
		t.Errorf("warnings %q", res.Warnings)
	}
}
