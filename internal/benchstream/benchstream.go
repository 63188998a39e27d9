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

// Shape is how the stream's documents are written. Every shape holds the same
// objects for the same n (the same values after parsing); only the text differs,
// so the renderer's cost can be compared across the layouts charts really emit.
type Shape string

const (
	// Block is plain block-style YAML, the layout most chart templates use.
	Block Shape = "block"
	// Flow writes labels, selectors, ports, env, resources and probes in flow style
	// (labels: {app: x}, ports: [{...}]), and every other Deployment's, Service's and
	// ConfigMap's metadata as one flow mapping, as some charts and generators emit.
	Flow Shape = "flow"
	// Mixed is block style with comments throughout (after the Source line, before
	// keys, after values, between list items) and every other workload's template
	// written with CRLF line ends, as a template saved on Windows gives: Helm writes
	// its own "---" and "# Source:" lines with LF and trims the template's last line
	// end, so those documents mix both.
	Mixed Shape = "mixed"
)

// Shapes lists every shape, in the order `make bench` reports them.
var Shapes = []Shape{Block, Flow, Mixed}

// ParseShape returns the shape named s.
func ParseShape(s string) (Shape, error) {
	for _, sh := range Shapes {
		if string(sh) == s {
			return sh, nil
		}
	}
	return "", fmt.Errorf("unknown stream shape %q (want block, flow or mixed)", s)
}

// Write writes the Block stream: see WriteShape.
func Write(w io.Writer, n int) (Stats, error) { return WriteShape(w, n, Block) }

// WriteShape writes a stream shaped exactly like the one Helm 3 hands a
// post-renderer for a chart with n workloads, each one template file
// (bench/templates/wl-NNNN.yaml) holding a ConfigMap, a Service and a
// Deployment, written in the given shape.
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
// probe) and about 1.1 KB per workload in block style, so n=3000 gives ~3.3 MB
// and 9000 documents. Small per-workload variations keep the documents from
// being byte-identical.
func WriteShape(w io.Writer, n int, shape Shape) (Stats, error) {
	kinds := map[Shape][]func(*strings.Builder, int){
		Block: {configMap, service, deployment},
		Flow:  {flowConfigMap, flowService, flowDeployment},
		Mixed: {mixedConfigMap, mixedService, mixedDeployment},
	}[shape]
	if kinds == nil {
		return Stats{}, fmt.Errorf("unknown stream shape %q", shape)
	}
	cw := &countingWriter{w: w}
	st := Stats{Workloads: n}
	var b, content strings.Builder
	for _, kind := range kinds {
		for i := 1; i <= n; i++ {
			b.Reset()
			fmt.Fprintf(&b, "---\n# Source: bench/templates/%s.yaml\n", Name(i))
			content.Reset()
			kind(&content, i)
			text := content.String()
			if shape == Mixed && i%2 == 0 {
				text = strings.ReplaceAll(text, "\n", "\r\n")
				text = strings.TrimRight(text, "\r\n") + "\n" // Helm trims, then ends with \n
			}
			b.WriteString(text)
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

// Bytes is the n-workload Block stream in memory.
func Bytes(n int) []byte { return ShapeBytes(n, Block) }

// ShapeBytes is the n-workload stream of the given shape in memory.
func ShapeBytes(n int, shape Shape) []byte {
	var b strings.Builder
	if _, err := WriteShape(&b, n, shape); err != nil {
		panic(err)
	}
	return []byte(b.String())
}

// flowConfigMap is configMap with flow-style metadata and data.
func flowConfigMap(b *strings.Builder, i int) {
	fmt.Fprintf(b, `apiVersion: v1
kind: ConfigMap
metadata: {name: %[1]s-config}
data: {LOG_LEVEL: info, CACHE_TTL: %[2]ds, UPSTREAM: %[3]s}
`, Name(i), 30+i%5*30, Name(max(i-1, 1)))
}

// flowService is service with flow-style selector and ports; every other one has
// its metadata as a flow mapping.
func flowService(b *strings.Builder, i int) {
	meta := fmt.Sprintf("metadata:\n  name: %s\n", Name(i))
	if i%2 == 0 {
		meta = fmt.Sprintf("metadata: {name: %s}\n", Name(i))
	}
	fmt.Fprintf(b, `apiVersion: v1
kind: Service
%[2]sspec:
  selector: {app: %[1]s}
  ports: [{name: http, port: 80, targetPort: http}]
`, Name(i), meta)
}

// flowDeployment is deployment with flow-style labels, selector, ports, env,
// resources and probe; every other one has its metadata, labels included, as one
// flow mapping and its selector as a flow mapping holding a flow mapping.
func flowDeployment(b *strings.Builder, i int) {
	name := Name(i)
	meta := fmt.Sprintf("metadata:\n  name: %[1]s\n  labels: {app: %[1]s, version: v1}\n", name)
	selector := fmt.Sprintf("  selector:\n    matchLabels: {app: %s}\n", name)
	if i%2 == 0 {
		meta = fmt.Sprintf("metadata: {name: %[1]s, labels: {app: %[1]s, version: v1}}\n", name)
		selector = fmt.Sprintf("  selector: {matchLabels: {app: %s}}\n", name)
	}
	fmt.Fprintf(b, `apiVersion: apps/v1
kind: Deployment
%[4]sspec:
  replicas: %[2]d
%[5]s  template:
    metadata:
      labels: {app: %[1]s, version: v1}
    spec:
      containers:
      - name: app
        image: acme/%[1]s:1.%[3]d.0
        ports: [{name: http, containerPort: 8080}]
        env: [{name: PORT, value: "8080"}, {name: LOG_LEVEL, value: info}, {name: WORKLOAD, value: %[1]s}]
        resources: {requests: {cpu: 100m, memory: 128Mi}}
        readinessProbe: {tcpSocket: {port: http}}
`, name, 1+i%3, i%10, meta, selector)
}

// mixedConfigMap is configMap with the comments a chart's template carries.
func mixedConfigMap(b *strings.Builder, i int) {
	fmt.Fprintf(b, `# Settings read by %[1]s at start-up.
apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s-config # referenced by the Deployment's envFrom
data:
  # Log verbosity: debug, info, warn.
  LOG_LEVEL: info
  CACHE_TTL: %[2]ds # seconds

  UPSTREAM: %[3]s
`, Name(i), 30+i%5*30, Name(max(i-1, 1)))
}

// mixedService is service with comments.
func mixedService(b *strings.Builder, i int) {
	fmt.Fprintf(b, `apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  # Must match the pod labels of the Deployment below.
  selector:
    app: %[1]s # .Values.app
  ports:
  # HTTP, named so the probe can refer to it.
  - name: http
    port: 80 # .Values.service.port
    targetPort: http
`, Name(i))
}

// mixedDeployment is deployment with comments: before and after label entries,
// after values, between list items, and a blank line.
func mixedDeployment(b *strings.Builder, i int) {
	fmt.Fprintf(b, `# The %[1]s API.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s # fullname
  labels:
    # Standard labels; the selector below must stay a subset of them.
    app: %[1]s
    version: v1 # bumped by CI
spec:
  replicas: %[2]d # .Values.replicaCount
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      # No annotations by default.
      labels:
        app: %[1]s # must match the selector
        version: v1

    spec:
      containers:
      # The application container.
      - name: app
        image: acme/%[1]s:1.%[3]d.0 # pinned by the release pipeline
        ports:
        - name: http
          containerPort: 8080
        env:
        - name: PORT
          value: "8080"
        # Overridden per environment.
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
