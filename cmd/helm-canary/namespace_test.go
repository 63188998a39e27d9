package main

import (
	"bytes"
	"strings"
	"testing"
)

// A chart whose VirtualService names its Service by FQDN in namespace shop.
const fqdnChart = `---
apiVersion: v1
kind: Service
metadata: {name: cart-api}
spec:
  selector: {app: cart}
  ports: [{name: http, port: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart}
spec:
  replicas: 1
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: cart, image: cart:2}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart-api}
spec:
  hosts: [cart-api.shop.svc.cluster.local]
  http:
  - route: [{destination: {host: cart-api.shop.svc.cluster.local}}]
`

// render knows the release's namespace from -n/--namespace or HELM_NAMESPACE (how
// helm hands `helm canary render` its -n), never from the kubeconfig's context: a
// post-renderer is not told helm's -n, so a default would be a guess.
func TestRenderNamespaceIsExplicit(t *testing.T) {
	apiServer(t, false) // a kubeconfig whose context says namespace: default
	render := func(env string, args ...string) (string, string, error) {
		t.Setenv("HELM_NAMESPACE", env)
		var out, errOut bytes.Buffer
		cmd := newRootCmd(strings.NewReader(fqdnChart), &out, &errOut)
		cmd.SetArgs(append([]string{"render", "--stage", "10"}, args...))
		err := cmd.Execute()
		return out.String(), errOut.String(), err
	}
	if _, _, err := render(""); err == nil || !strings.Contains(err.Error(), "pass the release's namespace with --namespace") {
		t.Errorf("no namespace: %v, want the refusal naming --namespace", err)
	}
	for _, tc := range []struct {
		env  string
		args []string
	}{{"", []string{"-n", "shop"}}, {"", []string{"--namespace=shop"}}, {"shop", nil}} {
		out, stderr, err := render(tc.env, tc.args...)
		if err != nil {
			t.Errorf("HELM_NAMESPACE=%q %v: %v\n%s", tc.env, tc.args, err, stderr)
			continue
		}
		if strings.Count(out, "kind: VirtualService") != 1 || !strings.Contains(out, "subset: canary") {
			t.Errorf("HELM_NAMESPACE=%q %v: want the chart's VirtualService split in place:\n%s", tc.env, tc.args, out)
		}
	}
	if _, _, err := render("", "-n", "shop", "--cluster-domain", "Corp.Example"); err == nil || !strings.Contains(err.Error(), "cluster domain \"Corp.Example\" is not a DNS domain") {
		t.Errorf("--cluster-domain Corp.Example: %v", err)
	}
}
