{{- define "bookinfo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "bookinfo.labels" -}}
helm.sh/chart: {{ include "bookinfo.chart" . }}
app.kubernetes.io/part-of: bookinfo
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Image of one bookinfo service version: (list $ "reviews" "v2"). */}}
{{- define "bookinfo.image" -}}
{{- $root := index . 0 -}}
{{- printf "%s/examples-bookinfo-%s-%s:%v" $root.Values.hub (index . 1) (index . 2) $root.Values.tag }}
{{- end }}
