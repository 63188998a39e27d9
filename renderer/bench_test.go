package renderer

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/stages"
)

// benchStream is a release with n workloads, each a Service, a Deployment and a
// ConfigMap, shaped like Helm 3's post-renderer input.
func benchStream(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("wl-%04d", i)
		fmt.Fprintf(&b, `---
# Source: bench/templates/%[1]s.yaml
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
  labels:
    app: %[1]s
spec:
  selector:
    app: %[1]s
  ports:
    - name: http
      port: 80
      targetPort: http
---
# Source: bench/templates/%[1]s.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels:
    app: %[1]s
    version: v1
spec:
  replicas: 2
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
        version: v1
    spec:
      containers:
        - name: app
          image: "registry.example.com/team/%[1]s:1.0.0"
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: LOG_LEVEL
              value: info
            - name: CONFIG
              value: /etc/app/config.yaml
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
---
# Source: bench/templates/%[1]s.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s-config
data:
  config.yaml: |
    level: info
    name: %[1]s
  FEATURE_X: "true"
`, name)
	}
	return b.Bytes()
}

func BenchmarkRenderAllTargeted(b *testing.B) {
	in := benchStream(3000)
	opts := Options{Stage: mustStageB(b, "10")}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Render(in, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderTenTargeted(b *testing.B) {
	in := benchStream(3000)
	opts := Options{Stage: mustStageB(b, "10")}
	for i := 1; i <= 10; i++ {
		opts.Workloads = append(opts.Workloads, fmt.Sprintf("wl-%04d", i*250))
	}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Render(in, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkYAMLRoundTrip is the floor: decode and re-encode every document.
func BenchmarkYAMLRoundTrip(b *testing.B) {
	in := benchStream(3000)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		dec := yaml.NewDecoder(bytes.NewReader(in))
		enc := yaml.NewEncoder(io.Discard)
		for {
			var n yaml.Node
			if err := dec.Decode(&n); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			if err := enc.Encode(&n); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func mustStageB(b *testing.B, s string) (st stagesStage) {
	st, err := parseStage(s)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

type stagesStage = stages.Stage

var parseStage = stages.Parse
