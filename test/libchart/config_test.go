package libchart

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
)

// configChart is a chart in library mode whose web tier reads a ConfigMap (volume)
// and a Secret (env) that its values set per track, the way seed 001's values set
// images per track.
func configChart(t *testing.T) string {
	t.Helper()
	chart := filepath.Join(t.TempDir(), "web")
	copyDir(t, libraryChart, filepath.Join(chart, "charts", "canary-lib"))
	files := map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"values.yaml": `cmName: web-config
sides:
  production: {image: {repository: web, tag: "1"}, greeting: hello from 1, apiKey: key-1}
  canary: {image: {tag: "2"}, weight: 10, greeting: hello from 2, apiKey: key-2}
`,
		"templates/_pod.tpl": `{{- define "web.pod" -}}
containers:
  - name: web
    image: {{ .image | quote }}
    env:
      - name: API_KEY
        valueFrom:
          secretKeyRef: {name: {{ include "canary-lib.configName" (list . "web-secret") }}, key: apiKey}
    volumeMounts:
      - {name: config, mountPath: /etc/web}
volumes:
  - name: config
    configMap:
      name: {{ include "canary-lib.configName" (list . .root.Values.cmName) }}
{{- end -}}
`,
		"templates/web.yaml": `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
{{- $cm := dict "apiVersion" "v1" "kind" "ConfigMap" "metadata" (dict "name" .Values.cmName) }}
{{- $secret := dict "apiVersion" "v1" "kind" "Secret" "metadata" (dict "name" "web-secret") "type" "Opaque" }}
{{- $configs := list
      (dict "production" (merge (dict "data" (dict "greeting" .Values.sides.production.greeting)) $cm)
            "canary" (merge (dict "data" (dict "greeting" .Values.sides.canary.greeting)) $cm))
      (dict "production" (merge (dict "data" (dict "apiKey" (.Values.sides.production.apiKey | b64enc))) $secret)
            "canary" (merge (dict "data" (dict "apiKey" (.Values.sides.canary.apiKey | b64enc))) $secret)) }}
{{ include "canary-lib.all" (dict "root" . "name" "web" "serviceName" "web"
      "selectorLabels" (dict "app" "web") "podSpecTemplate" "web.pod" "configs" $configs
      "production" .Values.sides.production "canary" .Values.sides.canary) }}
`,
	}
	writeFiles(t, chart, files)
	return chart
}

// TestLibraryConfigPerTrack: the dict's configs are rendered from each track's
// values; while canary pods run, the canary reads NAME-canary copies (the renderer's
// names and annotation) and production the originals; at stable there are no copies.
func TestLibraryConfigPerTrack(t *testing.T) {
	chart := configChart(t)
	for _, tl := range tools(t) {
		t.Run(tl.name, func(t *testing.T) {
			at10 := parseObjects(t, tl.mustTemplate(t, chart, renderArgs{}))
			cm := at10["ConfigMap/web-config"]
			if got := cm["data"].(map[string]any)["greeting"]; got != "hello from 1" {
				t.Errorf("10: ConfigMap web-config greeting %v, want production's", got)
			}
			cp := at10["ConfigMap/web-config-canary"]
			if cp == nil {
				t.Fatalf("10: no ConfigMap web-config-canary; objects %v", at10.keys())
			}
			if got := cp["data"].(map[string]any)["greeting"]; got != "hello from 2" {
				t.Errorf("10: the copy's greeting %v, want the canary's", got)
			}
			if got := cp["metadata"].(map[string]any)["annotations"].(map[string]any)["helm-canary.io/copy-of"]; got != "web-config" {
				t.Errorf("10: the copy's copy-of annotation %v", got)
			}
			if at10["Secret/web-secret-canary"] == nil || at10["Secret/web-secret"] == nil {
				t.Errorf("10: the Secret and its copy: objects %v", at10.keys())
			}
			reads := func(set objectSet, deployment string) (cm, secret string) {
				spec := set["Deployment/"+deployment]["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
				cm = spec["volumes"].([]any)[0].(map[string]any)["configMap"].(map[string]any)["name"].(string)
				env := spec["containers"].([]any)[0].(map[string]any)["env"].([]any)[0].(map[string]any)
				secret = env["valueFrom"].(map[string]any)["secretKeyRef"].(map[string]any)["name"].(string)
				return cm, secret
			}
			if c, s := reads(at10, "web-canary"); c != "web-config-canary" || s != "web-secret-canary" {
				t.Errorf("10: the canary reads %s and %s", c, s)
			}
			if c, s := reads(at10, "web"); c != "web-config" || s != "web-secret" {
				t.Errorf("10: production reads %s and %s", c, s)
			}

			stable := parseObjects(t, tl.mustTemplate(t, chart, renderArgs{sets: []string{"sides.canary.weight=0"}}))
			for _, k := range stable.keys() {
				if strings.HasSuffix(k, "-canary") && !strings.HasPrefix(k, "Deployment/") {
					t.Errorf("stable: %s is rendered", k)
				}
			}
			if c, s := reads(stable, "web-canary"); c != "web-config" || s != "web-secret" {
				t.Errorf("stable: the canary (no pods) reads %s and %s", c, s)
			}

			long := strings.Repeat("c", 250)
			out := parseObjects(t, tl.mustTemplate(t, chart, renderArgs{sets: []string{"cmName=" + long}}))
			var copyName string
			for _, k := range out.keys() {
				if strings.HasPrefix(k, "ConfigMap/") && strings.HasSuffix(k, "-canary") {
					copyName = strings.TrimPrefix(k, "ConfigMap/")
				}
			}
			// The renderer's shortening: the first 235 characters, a hash of the whole.
			sum := sha256.Sum256([]byte(long))
			if want := long[:235] + "-" + hex.EncodeToString(sum[:])[:10] + "-canary"; copyName != want {
				t.Errorf("the copy of a 250-character name is %q, want the renderer's %q", copyName, want)
			}
			if c, _ := reads(out, "web-canary"); c != copyName {
				t.Errorf("the canary reads %s, the copy is %s", c, copyName)
			}
		})
	}
}
