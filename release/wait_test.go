package release

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/cli"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// A canary whose pods are ready a moment after the upgrade is seen ready a moment
// later, not a poll interval of a second later: the warm-up's next step (traffic to
// the canary) waits on it. The API server here reports each Deployment rolled out
// from its second read on.
func TestWaitRolloutSeesReadyPodsSoon(t *testing.T) {
	manifest := canariedManifest(t)
	var mu sync.Mutex
	reads := map[string]int{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/apis/apps/v1/namespaces/default/deployments/")
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		reads[name]++
		ready := int32(0)
		if reads[name] > 1 {
			ready = 2
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": name, "namespace": "default", "generation": 1},
			"spec":     map[string]any{"replicas": 2},
			"status":   map[string]any{"observedGeneration": 1, "replicas": 2, "updatedReplicas": ready, "readyReplicas": ready},
		})
	}))
	defer srv.Close()
	c := &Client{Settings: kubeconfigFor(t, srv.URL), Namespace: "default", Log: io.Discard}

	start := time.Now()
	if err := c.waitRollout(context.Background(), StageOptions{Timeout: 30 * time.Second}, manifest, ""); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if reads["web"] < 2 || reads["web-canary"] < 2 {
		t.Fatalf("reads %v: want each Deployment read until ready", reads)
	}
	// One poll interval of a second before; 100 ms now (and a loaded machine's delays).
	if took >= 700*time.Millisecond {
		t.Errorf("waitRollout took %s to see Deployments ready at their second read, want well under a second", took)
	}
}

// canariedManifest is a Service and its Deployment at stage 10: production, canary
// and the routing objects.
func canariedManifest(t *testing.T) string {
	t.Helper()
	const in = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: web:2
`
	stage, err := stages.Parse("10")
	if err != nil {
		t.Fatal(err)
	}
	res, err := renderer.Render([]byte(in), renderer.Options{Stage: stage})
	if err != nil {
		t.Fatal(err)
	}
	return string(res.Manifest)
}

// kubeconfigFor is Helm's settings reaching the API server at url.
func kubeconfigFor(t *testing.T, url string) *cli.EnvSettings {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: test
  user: {token: test}
contexts:
- name: test
  context: {cluster: test, user: test, namespace: default}
current-context: test
`, url)
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	s := cli.New()
	s.KubeConfig = path
	return s
}
