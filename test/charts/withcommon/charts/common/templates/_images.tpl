{{/* repository:tag of an image block, with an optional global registry. */}}
{{- define "common.images.image" -}}
{{- $registry := .imageRoot.registry -}}
{{- with .global }}{{ with .imageRegistry }}{{ $registry = . }}{{ end }}{{ end -}}
{{- if $registry -}}
{{- printf "%s/%s:%v" $registry .imageRoot.repository .imageRoot.tag -}}
{{- else -}}
{{- printf "%s:%v" .imageRoot.repository .imageRoot.tag -}}
{{- end -}}
{{- end -}}
