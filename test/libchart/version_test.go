package libchart

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helm-canary/helm-canary/renderer"
)

// versionChart is a chart whose pod and selector labels come from values, in
// library mode or plain (for the renderer).
func versionChart(t *testing.T) string {
	t.Helper()
	chart := filepath.Join(t.TempDir(), "ver")
	copyDir(t, libraryChart, filepath.Join(chart, "charts", "canary-lib"))
	writeFiles(t, chart, map[string]string{
		"Chart.yaml":  "apiVersion: v2\nname: ver\nversion: 0.1.0\n",
		"values.yaml": "library: true\nkeep: false\npodLabels: {app: ver}\nselectorLabels: {app: ver}\nsides: {production: {image: {repository: ver, tag: \"2\"}}, canary: {weight: 10}}\n",
		"templates/_pod.tpl": `{{- define "ver.pod" -}}
containers:
  - name: ver
    image: {{ .image | quote }}
    ports:
      - containerPort: 8080
{{- end -}}
`,
		"templates/app.yaml": `apiVersion: v1
kind: Service
metadata:
  name: ver
spec:
  selector: {app: ver}
  ports: [{name: http, port: 8080}]
---
{{- if .Values.library }}
{{ include "canary-lib.all" (dict "root" . "name" "ver" "serviceName" "ver" "servicePort" 8080
      "selectorLabels" .Values.selectorLabels "podLabels" .Values.podLabels "podSpecTemplate" "ver.pod"
      "keepVersionLabels" .Values.keep "production" .Values.sides.production "canary" .Values.sides.canary) }}
{{- else }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ver
spec:
  replicas: 1
  selector:
    matchLabels: {{ toJson .Values.selectorLabels }}
  template:
    metadata:
      labels: {{ toJson .Values.podLabels }}
    spec:
      {{- include "ver.pod" (dict "image" "ver:2") | nindent 6 }}
{{- end }}
`,
	})
	return chart
}

func podLabelsOf(t *testing.T, set objectSet, name string) map[string]string {
	t.Helper()
	d, ok := set["Deployment/"+name]
	if !ok {
		t.Fatalf("no Deployment %s in %v", name, set.keys())
	}
	out := map[string]string{}
	labels, _ := d["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)["labels"].(map[string]any)
	for k, v := range labels {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// canary-lib gives the canary's pods the version labels the renderer gives them
// (the same label keys as renderer.VersionLabels, the same values), keeps a label
// that selectorLabels holds, keeps them all with keepVersionLabels, and never
// changes production's pod labels.
func TestLibraryCanaryVersionLabels(t *testing.T) {
	chart := versionChart(t)
	all := "podLabels.app=ver,podLabels.version=v2,podLabels.app\\.kubernetes\\.io/version=1.16.0,podLabels.service\\.istio\\.io/canonical-revision=r7"
	for _, c := range []struct {
		name string
		sets []string
		want map[string]string // the canary's version labels; "" = none
	}{
		{"every version label", []string{all}, map[string]string{"version": "v2-canary", "app.kubernetes.io/version": "1.16.0-canary", "service.istio.io/canonical-revision": "r7-canary"}},
		{"no version label", nil, map[string]string{"version": "canary"}},
		{"version in the selector", []string{all, "selectorLabels.version=v2"}, map[string]string{"version": "v2", "app.kubernetes.io/version": "1.16.0-canary", "service.istio.io/canonical-revision": "r7-canary"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lib := parseObjects(t, tools(t)[0].mustTemplate(t, chart, renderArgs{sets: c.sets}))
			plain := tools(t)[0].mustTemplate(t, chart, renderArgs{sets: append([]string{"library=false"}, c.sets...)})
			rendered := parseObjects(t, render(t, plain, "", "--stage", "10"))
			libCanary, renderCanary := podLabelsOf(t, lib, "ver-canary"), podLabelsOf(t, rendered, "ver-canary")
			for _, key := range renderer.VersionLabels {
				if libCanary[key] != c.want[key] {
					t.Errorf("canary-lib: the canary's %s = %q, want %q", key, libCanary[key], c.want[key])
				}
				if libCanary[key] != renderCanary[key] {
					t.Errorf("the canary's %s: canary-lib %q, the renderer %q", key, libCanary[key], renderCanary[key])
				}
			}
			production := podLabelsOf(t, lib, "ver")
			for _, key := range renderer.VersionLabels {
				if strings.HasSuffix(production[key], renderer.CanarySuffix) || production[key] == renderer.TrackCanary {
					t.Errorf("canary-lib changed production's %s: %q", key, production[key])
				}
			}
		})
	}
	lib := parseObjects(t, tools(t)[0].mustTemplate(t, chart, renderArgs{sets: []string{all, "keep=true"}}))
	if got := podLabelsOf(t, lib, "ver-canary"); got["version"] != "v2" || got["app.kubernetes.io/version"] != "1.16.0" {
		t.Errorf("keepVersionLabels: true: the canary's pod labels %v, want the chart's", got)
	}
}
