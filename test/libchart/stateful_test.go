package libchart

import (
	"path/filepath"
	"strings"
	"testing"
)

// statefulChart is a chart in library mode whose workload has the shapes of a
// stateful Deployment (a bitnami-style database): a claim mounted by the pod spec
// and, with strategy=Recreate, the strategy grafana's chart documents for a
// dashboard on a ReadWriteOnce volume.
func statefulChart(t *testing.T) string {
	t.Helper()
	chart := filepath.Join(t.TempDir(), "db")
	copyDir(t, libraryChart, filepath.Join(chart, "charts", "canary-lib"))
	files := map[string]string{
		"Chart.yaml":  "apiVersion: v2\nname: db\nversion: 0.1.0\n",
		"values.yaml": "claim: true\nstrategy: RollingUpdate\nforce: false\nclaimModes: {}\nsides: {production: {image: {repository: db, tag: \"1\"}}, canary: {image: {tag: \"2\"}, weight: 10}}\n",
		"templates/_pod.tpl": `{{- define "db.pod" -}}
containers:
  - name: db
    image: {{ .image | quote }}
{{- if .root.Values.claim }}
    volumeMounts:
      - {name: data, mountPath: /data}
volumes:
  - name: config
    configMap: {name: db}
  - name: data
    persistentVolumeClaim:
      claimName: db-data
{{- end }}
{{- end -}}
`,
		"templates/db.yaml": `apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  selector: {app: db}
  ports: [{name: tcp-db, port: 5432}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: db-data
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 8Gi}}
---
{{ include "canary-lib.all" (dict "root" . "name" "db" "serviceName" "db"
      "servicePorts" (list (dict "name" "tcp-db" "port" 5432))
      "selectorLabels" (dict "app" "db") "podSpecTemplate" "db.pod"
      "deploymentSpec" (dict "strategy" (dict "type" .Values.strategy))
      "forceStateful" .Values.force "claimAccessModes" .Values.claimModes
      "production" .Values.sides.production "canary" .Values.sides.canary) }}
`,
	}
	writeFiles(t, chart, files)
	return chart
}

// TestLibraryRefusesStatefulWorkloads: canary-lib refuses a stateful workload the way
// helm-canary render refuses one named with --workload (a ReadWriteOnce claim,
// strategy Recreate), saying why and how to force it, at every stage; forceStateful
// renders it, and a claim declared ReadWriteMany does not count.
func TestLibraryRefusesStatefulWorkloads(t *testing.T) {
	chart := statefulChart(t)
	for _, tl := range tools(t) {
		t.Run(tl.name, func(t *testing.T) {
			for _, c := range []struct {
				name string
				sets []string
				want []string // the error's parts; none: it renders
			}{
				{"claim at 10", nil, []string{"canary-lib (db): the workload is stateful", "PersistentVolumeClaim db-data", "ReadWriteOnce unless claimAccessModes", "forceStateful: true"}},
				{"claim at stable", []string{"sides.canary.weight=0"}, []string{"canary-lib (db): the workload is stateful"}},
				{"claim declared ReadWriteOnce", []string{"claimModes.db-data={ReadWriteOnce}"}, []string{"mounts the ReadWriteOnce PersistentVolumeClaim db-data"}},
				{"Recreate", []string{"claim=false", "strategy=Recreate"}, []string{"deploymentSpec.strategy.type is Recreate"}},
				{"both", []string{"strategy=Recreate"}, []string{"strategy.type is Recreate", "PersistentVolumeClaim db-data"}},
				{"forced", []string{"strategy=Recreate", "force=true"}, nil},
				{"claim declared ReadWriteMany", []string{"claimModes.db-data={ReadWriteMany}"}, nil},
				{"stateless", []string{"claim=false"}, nil},
			} {
				t.Run(c.name, func(t *testing.T) {
					out, err := tl.template(t, chart, renderArgs{sets: c.sets})
					if len(c.want) > 0 {
						wantError(t, "template", err, c.want)
						return
					}
					if err != nil {
						t.Fatalf("template: %v", err)
					}
					if !strings.Contains(out, "name: db-canary") {
						t.Errorf("no canary Deployment:\n%s", out)
					}
				})
			}
		})
	}
}
