package renderer

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/stages"
)

func mustStage(t *testing.T, s string) stages.Stage {
	t.Helper()
	st, err := stages.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func render(t *testing.T, in string, opts Options) string {
	t.Helper()
	res, err := Render([]byte(in), opts)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return string(res.Manifest)
}

func renderErr(t *testing.T, in string, opts Options) error {
	t.Helper()
	res, err := Render([]byte(in), opts)
	if err == nil {
		t.Fatalf("Render succeeded, want an error; output:\n%s", res.Manifest)
	}
	if len(res.Manifest) != 0 {
		t.Fatalf("Render failed but returned output:\n%s", res.Manifest)
	}
	return err
}

// objects parses a rendered stream fully, as Helm would.
func objects(t *testing.T, out string) []*yaml.RNode {
	t.Helper()
	nodes, err := kio.FromBytes([]byte(out))
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, out)
	}
	return nodes
}

func find(t *testing.T, out, kind, name string) *yaml.RNode {
	t.Helper()
	for _, n := range objects(t, out) {
		if n.GetKind() == kind && n.GetName() == name {
			return n
		}
	}
	t.Fatalf("no %s %s in output:\n%s", kind, name, out)
	return nil
}

func count(t *testing.T, out, kind string) int {
	t.Helper()
	c := 0
	for _, n := range objects(t, out) {
		if n.GetKind() == kind {
			c++
		}
	}
	return c
}

// get reads a dotted path; list elements by [index].
func get(t *testing.T, n *yaml.RNode, path string) string {
	t.Helper()
	v, err := n.GetFieldValue(path)
	if err != nil {
		return "<none>"
	}
	switch x := v.(type) {
	case string:
		return x
	default:
		out, _ := yaml.Marshal(x)
		return strings.TrimSpace(string(out))
	}
}

func wantField(t *testing.T, n *yaml.RNode, path, want string) {
	t.Helper()
	if got := get(t, n, path); got != want {
		t.Errorf("%s %s: %s = %q, want %q", n.GetKind(), n.GetName(), path, got, want)
	}
}

// weights returns the default route's subset->weight of a VirtualService.
func weights(t *testing.T, vs *yaml.RNode, route int) map[string]string {
	t.Helper()
	http, err := vs.Pipe(yaml.Lookup("spec", "http"))
	if err != nil || http == nil {
		t.Fatalf("VirtualService %s has no http routes", vs.GetName())
	}
	r := yaml.NewRNode(http.YNode().Content[route])
	out := map[string]string{}
	dests, _ := r.Pipe(yaml.Lookup("route"))
	for _, d := range dests.YNode().Content {
		dn := yaml.NewRNode(d)
		subset := stringAt(dn, "destination", "subset")
		if subset == "" {
			subset = "<host>"
		}
		out[subset] = stringAt(dn, "weight")
	}
	return out
}

const app = `---
# Source: shop/templates/cart.yaml
apiVersion: v1
kind: Service
metadata:
  name: cart-api
spec:
  selector:
    app: cart
  ports:
  - name: http
    port: 8080
    targetPort: http
---
# Source: shop/templates/cart.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  labels:
    app: cart
spec:
  replicas: 3
  selector:
    matchLabels:
      app: cart
  template:
    metadata:
      labels:
        app: cart
    spec:
      containers:
      - name: cart
        image: repo/cart:TAG
        ports:
        - name: http
          containerPort: 8080
`

func appAt(tag string) string { return strings.ReplaceAll(app, "TAG", tag) }
