package localcluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(localcluster.RunTests(m, localcluster.Options{}, &cluster))
}

var namespaces atomic.Int32

// namespace gives each test its own namespace, named after the test but cut to fit
// a DNS label (63 characters), with a counter to keep cut names apart.
func namespace(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real kube-apiserver; not in -short mode")
	}
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	name = fmt.Sprintf("%.55s-%d", name, namespaces.Add(1))
	if err := cluster.CreateNamespace(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

const validRouting = `
# Source: chart/templates/empty.yaml
---
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: production}
      weight: 90
    - destination: {host: reviews, subset: canary}
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: production
    labels: {track: production}
  - name: canary
    labels: {track: canary}
`

func TestDryRunApply(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		wantErr  []string // substrings of the error; none means success
	}{
		{
			name:     "valid VirtualService and DestinationRule",
			manifest: validRouting,
		},
		{
			// A typo must fail, not be pruned silently. (Server-side apply rejects
			// undeclared fields whatever fieldValidation says; checked by hand.)
			name: "unknown field in VirtualService",
			manifest: `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: typo
spec:
  hosts: [reviews]
  http:
  - wieght: 10
    route:
    - destination: {host: reviews}
`,
			wantErr: []string{"VirtualService", "/typo apply", "wieght"},
		},
		{
			name: "Deployment selector does not match template labels",
			manifest: `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews
spec:
  selector:
    matchLabels: {app: reviews}
  template:
    metadata:
      labels: {app: ratings}
    spec:
      containers:
      - name: app
        image: reviews:1
`,
			wantErr: []string{"Deployment", "/reviews apply", "spec.template.metadata.labels", "does not match template"},
		},
		{
			name: "every rejected object is reported",
			manifest: `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: first
spec:
  hots: reviews
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: second
spec:
  host: reviews
  subsets:
  - name: canary
    lables: {track: canary}
`,
			wantErr: []string{"DestinationRule", "/first apply", "hots", "/second apply", "lables"},
		},
		{
			name:     "duplicate key",
			manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\ndata:\n  a: x\n  a: y\n",
			wantErr:  []string{"YAML document 1", `"a"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := namespace(t)
			err := cluster.DryRunApply(t.Context(), ns, []byte(tt.manifest))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("DryRunApply: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("DryRunApply succeeded, want an error mentioning %q", tt.wantErr)
			}
			t.Logf("DryRunApply error (wanted):\n%v", err)
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("DryRunApply error does not mention %q:\n%v", want, err)
				}
			}
		})
	}
}

var virtualServices = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

func listVirtualServices(t *testing.T, ns string) []string {
	t.Helper()
	client, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	list, err := client.Resource(virtualServices).Namespace(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, item := range list.Items {
		names = append(names, item.GetName())
	}
	return names
}

func TestDryRunApplyStoresNothing(t *testing.T) {
	ns := namespace(t)
	if err := cluster.DryRunApply(t.Context(), ns, []byte(validRouting)); err != nil {
		t.Fatal(err)
	}
	if names := listVirtualServices(t, ns); len(names) != 0 {
		t.Errorf("after DryRunApply, VirtualServices in %s = %v, want none", ns, names)
	}
}

func TestApplyStores(t *testing.T) {
	ns := namespace(t)
	if err := cluster.Apply(t.Context(), ns, []byte(validRouting)); err != nil {
		t.Fatal(err)
	}
	if names := listVirtualServices(t, ns); len(names) != 1 || names[0] != "reviews" {
		t.Errorf("after Apply, VirtualServices in %s = %v, want [reviews]", ns, names)
	}
}

func TestKubeconfigAndBinDir(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver; not in -short mode")
	}
	data, err := os.ReadFile(cluster.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{cluster.RESTConfig().Host, "insecure-skip-tls-verify: true", "token:"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("kubeconfig does not contain %q:\n%s", want, data)
		}
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kwok-stages.yaml", "istio-crds.yaml"} {
		if _, err := os.Stat(cluster.BinDir() + "/" + name); err != nil {
			t.Error(err)
		}
	}
}

// TestStop starts a second cluster from the cached binaries, API server only, and
// checks that Stop kills both servers, removes the temporary directory and can be
// called twice. (TestMain's cluster, with every process, is stopped the same way.)
func TestStop(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver; not in -short mode")
	}
	c, err := localcluster.Start(context.Background(), localcluster.Options{BinDir: cluster.BinDir(), APIOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimSuffix(c.Kubeconfig(), "/kubeconfig")
	pids := serverPIDs(t, dir, 2)
	c.Stop()
	c.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after Stop, %s still exists (stat: %v)", dir, err)
	}
	for _, pid := range pids {
		// Stop waited for the processes, so they are reaped: signal 0 must fail.
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("after Stop, process %d is still running", pid)
		}
	}
}

// serverPIDs finds the processes whose command line mentions dir: etcd's data
// directory, kube-apiserver's cert directory and the others' kubeconfig are in it.
func serverPIDs(t *testing.T, dir string, want int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc to find processes: %v", err)
	}
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), dir) {
			pids = append(pids, pid)
		}
	}
	if len(pids) != want {
		t.Fatalf("found %d processes with %s in their command line, want %d", len(pids), dir, want)
	}
	return pids
}
