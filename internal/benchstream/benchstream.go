// Package benchstream generates the release stream the renderer is benchmarked on,
// shaped as Helm 3 hands it to a post-renderer, for `go test -bench` and `make bench`
// alike.
package benchstream

import (
	"fmt"
	"io"
	"strings"
)

// Stats describes a generated manifest stream.
type Stats struct {
	Bytes     int64 `json:"bytes"`
	Documents int   `json:"documents"`
	Workloads int   `json:"workloads"`
}

// Name is the name of workload i (1-based). The same names are what
// the "10 targeted" run passes as --workload, so the two must agree.
func Name(i int) string { return fmt.Sprintf("wl-%04d", i) }

// Write writes a stream shaped exactly like the one Helm 3 hands a
// post-renderer for a chart with n workloads, each one template file
// (bench/templates/wl-NNNN.yaml) holding a ConfigMap, a Service and a
// Deployment.
//
// Helm's shape matters for an honest benchmark, so it is copied here:
//   - every document is written as "---\n# Source: <template>\n<content>\n"
//     with the content trimmed (helm.sh/helm/v3 pkg/action/action.go);
//   - documents are sorted by kind in Helm's install order (releaseutil
//     InstallOrder: ConfigMap, then Service, then Deployment), stable within
//     a kind, so a workload's three documents are NOT adjacent: all n
//     ConfigMaps come first, then all Services, then all Deployments. A
//     renderer therefore has to relate Services to Deployments across the
//     whole stream, as it must with real charts.
//
// The content is deliberately ordinary (labels app/version, one container
// with image, named port, a handful of env entries, resources and a readiness
// probe) and about 1.1 KB per workload, so n=3000 gives ~3.3 MB and 9000
// documents. Small per-workload variations keep the documents from being
// byte-identical.
func Write(w io.Writer, n int) (Stats, error) {
	cw := &countingWriter{w: w}
	st := Stats{Workloads: n}
	kinds := []func(*strings.Builder, int){configMap, service, deployment}
	var b strings.Builder
	for _, kind := range kinds {
		for i := 1; i <= n; i++ {
			b.Reset()
			fmt.Fprintf(&b, "---\n# Source: bench/templates/%s.yaml\n", Name(i))
			kind(&b, i)
			if _, err := io.WriteString(cw, b.String()); err != nil {
				return st, err
			}
			st.Documents++
		}
	}
	st.Bytes = cw.n
	return st, nil
}

// configMap writes workload i's ConfigMap: a few configuration keys.
func configMap(b *strings.Builder, i int) {
	name := Name(i)
	fmt.Fprintf(b, `apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s-config
data:
  LOG_LEVEL: info
  CACHE_TTL: %[2]ds
  UPSTREAM: %[3]s
`, name, 30+i%5*30, Name(max(i-1, 1)))
}

// service writes workload i's Service: a selector on app and one named port.
func service(b *strings.Builder, i int) {
	fmt.Fprintf(b, `apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector:
    app: %[1]s
  ports:
  - name: http
    port: 80
    targetPort: http
`, Name(i))
}

// deployment writes workload i's Deployment: labels app/version on both the
// object and the pod template, one container with image, named port, env,
// resources and a readiness probe.
func deployment(b *strings.Builder, i int) {
	fmt.Fprintf(b, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels:
    app: %[1]s
    version: v1
spec:
  replicas: %[2]d
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
        image: acme/%[1]s:1.%[3]d.0
        ports:
        - name: http
          containerPort: 8080
        env:
        - name: PORT
          value: "8080"
        - name: LOG_LEVEL
          value: info
        - name: WORKLOAD
          value: %[1]s
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
        readinessProbe:
          tcpSocket:
            port: http
`, Name(i), 1+i%3, i%10)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Bytes is the n-workload stream in memory.
func Bytes(n int) []byte {
	var b strings.Builder
	_, _ = Write(&b, n)
	return []byte(b.String())
}
