{{/* Chart name and version as used by the helm.sh/chart label. */}}
{{- define "productpage.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "productpage.labels" -}}
helm.sh/chart: {{ include "productpage.chart" . }}
{{ include "productpage.podLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels on the pods. Only "app" is used by the Deployment's selector and the
Service: a Deployment's selector is immutable, so it stays as small as it was.
*/}}
{{- define "productpage.podLabels" -}}
app: {{ .Chart.Name }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The pod spec, written once for both modes. The argument is a dict: root (the
chart's $), image ("repository:tag") and pullPolicy; canary-lib also passes track,
name and values (productionDeployment or canaryDeployment).
*/}}
{{- define "productpage.podSpec" -}}
containers:
  - name: {{ .root.Chart.Name }}
    image: "{{ .image }}"
    imagePullPolicy: {{ .pullPolicy }}
    ports:
      - name: http
        containerPort: 9080
        protocol: TCP
    readinessProbe:
      httpGet:
        path: /health
        port: http
      initialDelaySeconds: 5
      periodSeconds: 10
    volumeMounts:
      - name: tmp
        mountPath: /tmp
volumes:
  - name: tmp
    emptyDir: {}
{{- end }}
