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
