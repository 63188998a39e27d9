{{/*
canary-lib.all: every canary object of one workload, as one multi-document
string: the production Deployment, the canary Deployment, the autoscalers (when
autoscaling.enabled), the DestinationRule, the VirtualService, the Gateway (when
gateway.enabled and gateway.create) and the user-percentage gateway filter (when
routing.userPercent is set, at live stages). The argument is the spec dict
described in README.md.
*/}}
{{- define "canary-lib.all" -}}
{{- $s := include "canary-lib.settings" . | fromYaml -}}
{{- $part := include "canary-lib.part" (dict "root" .root "part" .part) -}}
{{- if ne $part "mesh" -}}
{{ include "canary-lib.productionDeployment" . }}
---
{{ include "canary-lib.canaryDeployment" . }}
{{- if $s.autoscaled }}
---
{{ include "canary-lib.autoscalers" . }}
{{- end }}
{{- with .configs }}
{{- include "canary-lib.configs" $ }}
{{- end }}
{{- end }}
{{- if eq $part "all" }}
---
{{- end }}
{{- if ne $part "workloads" }}
{{ include "canary-lib.destinationRule" . }}
---
{{ include "canary-lib.virtualService" . }}
{{- if $s.createGateway }}
---
{{ include "canary-lib.gateway" . }}
{{- end }}
{{- with include "canary-lib.userFilter" . }}
---
{{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
canary-lib.part: (dict "root" $ ["part" P]) -> all, workloads or mesh: which
objects this render is for. The dict's part wins, else the chart's canary.part
value, else all. Where the mesh's configuration lives in another cluster (ASM's
control plane, Istio's config cluster), one application (or helm upgrade) per
cluster renders the chart with canary.part=workloads and canary.part=mesh; wrap the
chart's own templates that are not routing objects (its Service, ConfigMaps, ...)
in an if that compares this template's answer, for (dict "root" $), with "mesh".
*/}}
{{- define "canary-lib.part" -}}
{{- $part := .part -}}
{{- if and (kindIs "invalid" $part) .root -}}
{{- $canary := index .root.Values "canary" -}}
{{- if kindIs "map" $canary -}}
{{- $part = index $canary "part" -}}
{{- end -}}
{{- end -}}
{{- $part = printf "%v" ($part | default "all") -}}
{{- if not (has $part (list "all" "workloads" "mesh")) -}}
{{- fail (printf "canary-lib: canary.part %q: use workloads (everything but the mesh's routing objects), mesh (only the DestinationRule, VirtualService, Gateway and user filter) or all" $part) -}}
{{- end -}}
{{- $part -}}
{{- end -}}

{{/* canary-lib.productionDeployment: Deployment <name>, the chart's own selector. */}}
{{- define "canary-lib.productionDeployment" -}}
{{- include "canary-lib.deployment" (list . "production") -}}
{{- end -}}

{{/* canary-lib.canaryDeployment: Deployment <name>-canary, selector plus the track label. */}}
{{- define "canary-lib.canaryDeployment" -}}
{{- include "canary-lib.deployment" (list . "canary") -}}
{{- end -}}

{{/*
canary-lib.deployment: (list spec track) -> the Deployment of one track,
"production" or "canary".
*/}}
{{- define "canary-lib.deployment" -}}
{{- $in := index . 0 -}}
{{- $track := index . 1 -}}
{{- if not (or (eq $track "production") (eq $track "canary")) -}}
{{- fail (printf "canary-lib.deployment: track %q: use production or canary" $track) -}}
{{- end -}}
{{- $s := include "canary-lib.settings" $in | fromYaml -}}
{{- $canary := eq $track "canary" -}}
{{- if $canary }}{{ include "canary-lib.checkStateful" $in }}{{ end -}}
{{- $name := $in.name -}}
{{- $selector := $in.selectorLabels -}}
{{- $podLabels := $in.podLabels | default $in.selectorLabels -}}
{{- $replicas := $s.productionReplicas -}}
{{- $fixedReplicas := not $s.autoscaled -}}
{{- if $canary -}}
{{- $name = printf "%s-canary" $in.name -}}
{{- $selector = include "canary-lib.withTrack" (list $in.selectorLabels $s.trackLabel $track) | fromYaml -}}
{{- $replicas = $s.canaryReplicas -}}
{{- $fixedReplicas = not (and $s.autoscaled $s.canaryUp) -}}
{{- $podLabels = include "canary-lib.canaryVersions" (list $in $podLabels $s.trackLabel) | fromYaml -}}
{{- end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "canary-lib.withTrack" (list ($in.labels | default $in.selectorLabels) $s.trackLabel $track) | nindent 4 }}
  {{- with $in.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- if $fixedReplicas }}
  replicas: {{ int $replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
  {{- with $in.deploymentSpec }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "canary-lib.withTrack" (list $podLabels $s.trackLabel $track) | nindent 8 }}
      {{- with $in.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "canary-lib.podSpec" (list $in $track) | nindent 6 }}
{{- end -}}

{{/*
canary-lib.canaryVersions: (list spec podLabels trackLabel) -> the canary's pod
labels, as the renderer gives them: each label Istio and Kiali read a version from
(version, app.kubernetes.io/version, service.istio.io/canonical-revision) gets its
value plus -canary ("canary" for an empty one; a value -canary would make longer
than 63 characters, or that is the canary's already, is kept), and pods with none
of them get version: canary. So dashboards tell the canary from production by
version. A label in selectorLabels keeps its value: the Deployment's selector is
immutable and the Service selects by the same labels; keepVersionLabels: true keeps
them all (a Service or policy of the chart selects by one that selectorLabels lacks).
*/}}
{{- define "canary-lib.canaryVersions" -}}
{{- $in := index . 0 -}}
{{- $labels := index . 1 | default dict -}}
{{- $track := index . 2 -}}
{{- $out := dict -}}
{{- range $k, $v := $labels }}{{ $_ := set $out $k $v }}{{ end -}}
{{- if ne (printf "%v" $in.keepVersionLabels) "true" -}}
{{- $selector := $in.selectorLabels | default dict -}}
{{- $any := false -}}
{{- range list "version" "app.kubernetes.io/version" "service.istio.io/canonical-revision" -}}
{{- if hasKey $labels . -}}
{{- $any = true -}}
{{- $v := printf "%v" (index $labels .) -}}
{{- if and (not (hasKey $selector .)) (ne . $track) -}}
{{- if eq $v "" -}}
{{- $_ := set $out . "canary" -}}
{{- else if not (or (eq $v "canary") (hasSuffix "-canary" $v) (gt (add (len $v) 7) 63)) -}}
{{- $_ := set $out . (printf "%s-canary" $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (not $any) (not (hasKey $selector "version")) (ne "version" $track) -}}
{{- $_ := set $out "version" "canary" -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
canary-lib.checkStateful: fails for a workload that must not get a second copy of
itself, as helm-canary render refuses a stateful --workload (hazard 11): a canary
runs the same pod spec next to production, on the same volumes. Two signs:
deploymentSpec.strategy.type Recreate (the chart says two versions must never run at
once), and a persistentVolumeClaim volume in the pod spec that is ReadWriteOnce or
ReadWriteOncePod. A library chart cannot read the chart's other objects, so a claim
counts as ReadWriteOnce (what nearly every chart's claim is) unless the dict's
claimAccessModes names its modes; forceStateful: true renders it anyway.
*/}}
{{- define "canary-lib.checkStateful" -}}
{{- if ne (printf "%v" .forceStateful) "true" -}}
{{- $reasons := list -}}
{{- $strategy := (.deploymentSpec | default dict).strategy | default dict -}}
{{- if eq (printf "%v" (index $strategy "type")) "Recreate" -}}
{{- $reasons = append $reasons "deploymentSpec.strategy.type is Recreate: two versions of its pods must never run at once" -}}
{{- end -}}
{{- $pod := include "canary-lib.podSpec" (list . "canary") | fromYaml -}}
{{- $modes := .claimAccessModes | default dict -}}
{{- range $v := (index $pod "volumes") | default list -}}
{{- $claim := "" -}}
{{- if kindIs "map" $v -}}{{- $claim = dig "persistentVolumeClaim" "claimName" "" $v -}}{{- end -}}
{{- if $claim -}}
{{- $declared := index $modes $claim -}}
{{- $m := $declared | default (list "ReadWriteOnce") -}}
{{- $mode := "" -}}
{{- if has "ReadWriteOncePod" $m }}{{ $mode = "ReadWriteOncePod" }}{{ end -}}
{{- if has "ReadWriteOnce" $m }}{{ $mode = "ReadWriteOnce" }}{{ end -}}
{{- if and $mode $declared -}}
{{- $reasons = append $reasons (printf "its pod spec mounts the %s PersistentVolumeClaim %s" $mode $claim) -}}
{{- else if $mode -}}
{{- $reasons = append $reasons (printf "its pod spec mounts the PersistentVolumeClaim %s, ReadWriteOnce unless claimAccessModes says otherwise (canary-lib cannot read the claim)" $claim) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $reasons -}}
{{- fail (printf "canary-lib (%s): the workload is stateful: %s. Its canary would run the same pod spec next to production, on the same volume (two writers, or a Multi-Attach error when it lands on another node), so canary-lib does not render it: leave this workload out of canary-lib, give the dict claimAccessModes (claim name -> its accessModes) when a claim is ReadWriteMany, or set forceStateful: true if it can take a second copy of itself" .name (join "; " $reasons)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
canary-lib.podSpec: (list spec track) -> the pod spec of one track, from the
chart's podSpecTemplate: root, image, pullPolicy, track, name (the Deployment's)
and values (the track's dict).
*/}}
{{- define "canary-lib.podSpec" -}}
{{- $in := index . 0 -}}
{{- $track := index . 1 -}}
{{- $s := include "canary-lib.settings" $in | fromYaml -}}
{{- $args := dict "root" $in.root "track" $track "name" $in.name "image" $s.productionImage "pullPolicy" $s.productionPullPolicy "values" ($in.production | default dict) -}}
{{- if eq $track "canary" -}}
{{- $args = dict "root" $in.root "track" $track "name" (printf "%s-canary" $in.name) "image" $s.canaryImage "pullPolicy" $s.canaryPullPolicy "values" ($in.canary | default dict) -}}
{{- end -}}
{{- $_ := set $args "configNames" (include "canary-lib.configNames" (list $in $track) | fromYaml) -}}
{{- include $in.podSpecTemplate $args -}}
{{- end -}}

{{/*
canary-lib.configNames: (list spec track) -> YAML map of the ConfigMap and Secret
names of the dict's configs to the names this track's pods read: the canary reads
its copies while its pods run (hazard 12: a new version's configuration reaches the
canary first), production and a canary without pods the originals.
*/}}
{{- define "canary-lib.configNames" -}}
{{- $in := index . 0 -}}
{{- $track := index . 1 -}}
{{- $s := include "canary-lib.settings" $in | fromYaml -}}
{{- $names := dict -}}
{{- range $i, $c := $in.configs | default list -}}
{{- $name := dig "production" "metadata" "name" "" $c -}}
{{- if not $name -}}
{{- fail (printf "canary-lib (%s): configs[%d] needs production: a ConfigMap or Secret with metadata.name" $in.name $i) -}}
{{- end -}}
{{- if and (eq $track "canary") $s.canaryUp -}}
{{- $_ := set $names $name (include "canary-lib.configCopyName" $name) -}}
{{- else -}}
{{- $_ := set $names $name $name -}}
{{- end -}}
{{- end -}}
{{- toYaml $names -}}
{{- end -}}

{{/*
canary-lib.configName: (list podArgs NAME) -> the name of ConfigMap or Secret NAME
that the pods of this track read; for the chart's pod spec template, whose argument
is podArgs. NAME itself when it is not among the dict's configs.
*/}}
{{- define "canary-lib.configName" -}}
{{- $args := index . 0 -}}
{{- $name := index . 1 -}}
{{- index ($args.configNames | default dict) $name | default $name -}}
{{- end -}}

{{/*
canary-lib.configCopyName: NAME -> NAME-canary, the renderer's name for the
canary's copy; a name too long for the suffix (253 characters) keeps its first
characters and a hash of the whole before it, as the renderer shortens it.
*/}}
{{- define "canary-lib.configCopyName" -}}
{{- $n := printf "%s-canary" . -}}
{{- if gt (len $n) 253 -}}
{{- $n = printf "%s-%s-canary" (regexReplaceAll "[-.]+$" (trunc 235 .) "") (trunc 10 (sha256sum .)) -}}
{{- end -}}
{{- $n -}}
{{- end -}}

{{/*
canary-lib.configs: the dict's configs: each production object as given and,
while canary pods run, the canary's object (default: production's) as the copy
the canary reads: named by canary-lib.configCopyName, annotated
helm-canary.io/copy-of, never immutable (the next canary version updates it).
*/}}
{{- define "canary-lib.configs" -}}
{{- $s := include "canary-lib.settings" . | fromYaml -}}
{{- $in := . -}}
{{- range $i, $c := $in.configs | default list -}}
{{- $p := $c.production -}}
{{- $name := dig "metadata" "name" "" ($p | default dict) -}}
{{- if not (has (printf "%v" (index ($p | default dict) "kind")) (list "ConfigMap" "Secret")) -}}
{{- fail (printf "canary-lib (%s): configs[%d].production must be a ConfigMap or Secret" $in.name $i) -}}
{{- end }}
---
{{ toYaml $p }}
{{- if $s.canaryUp }}
{{- $copy := deepCopy ($c.canary | default $p) -}}
{{- $meta := deepCopy ($copy.metadata | default dict) -}}
{{- $_ := set $meta "name" (include "canary-lib.configCopyName" $name) -}}
{{- $_ := set $meta "annotations" (merge (dict "helm-canary.io/copy-of" $name) ($meta.annotations | default dict)) -}}
{{- $_ := set $copy "metadata" $meta -}}
{{- $copy = omit $copy "immutable" }}
---
{{ toYaml $copy }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
canary-lib.destinationRule: DestinationRule <serviceName> for host <serviceName>,
subsets production and canary (selector labels plus the track label).
*/}}
{{- define "canary-lib.destinationRule" -}}
{{- $s := include "canary-lib.settings" . | fromYaml -}}
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {{ .serviceName }}
  {{- with (.serviceLabels | default .labels) }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  host: {{ .serviceName }}
  {{- with .trafficPolicy }}
  trafficPolicy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  subsets:
  - name: production
    labels:
      {{- include "canary-lib.withTrack" (list .selectorLabels $s.trackLabel "production") | nindent 6 }}
  - name: canary
    labels:
      {{- include "canary-lib.withTrack" (list .selectorLabels $s.trackLabel "canary") | nindent 6 }}
{{- end -}}

{{/*
canary-lib.virtualService: VirtualService <serviceName> for host <serviceName>
(plus the gateway's named hosts when a gateway is enabled), one http route with
the weighted production/canary pair; weight 0 is written out. At live stages the
routing extras (canary-lib.extraRoutes) go ahead of it, the canary destination sets
the sticky cookie and the route mirrors to the canary.
*/}}
{{- define "canary-lib.virtualService" -}}
{{- $s := include "canary-lib.settings" . | fromYaml -}}
{{- $gw := .gateway | default dict -}}
{{- $route := .httpRoute | default dict -}}
{{- if hasKey $route "route" -}}
{{- fail (printf "canary-lib (%s): httpRoute must not set route: canary-lib writes the weighted destinations" .name) -}}
{{- end -}}
{{- $routing := .routing | default dict -}}
{{- $setCookie := "" -}}
{{- $mirror := 0 -}}
{{- if $s.live -}}
{{- $setCookie = include "canary-lib.stickyCookie" . -}}
{{- with $routing.mirror }}{{ $mirror = .percent | default 0 }}{{ end -}}
{{- end -}}
{{- if gt (float64 $mirror) 0.0 -}}
{{- $route = omit $route "mirror" "mirrorPercentage" -}}
{{- end -}}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {{ .serviceName }}
  {{- with (.serviceLabels | default .labels) }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  hosts:
  - {{ .serviceName }}
  {{- if $s.gateway }}
  {{- range (index $gw "hosts") }}
  {{- $host := . }}
  {{- if contains "/" $host }}{{ $host = splitList "/" $host | last }}{{ end }}
  {{- if and (ne $host "*") (not (include "canary-lib.hostMatches" (list $host $.serviceName $.root.Release.Namespace $s.clusterDomain))) }}
  - {{ $host | quote }}
  {{- end }}
  {{- end }}
  gateways:
  - {{ $s.gatewayName }}
  - mesh
  {{- end }}
  {{- $ports := include "canary-lib.portPlan" . | fromYaml }}
  {{- if $ports.http }}
  http:
  {{- with include "canary-lib.extraRoutes" (list . $setCookie) | fromYamlArray }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  - route:
    {{- if $s.adopting }}
    - destination:
        host: {{ .serviceName }}
        {{- with .servicePort }}
        port:
          number: {{ int . }}
        {{- end }}
    {{- else }}
    - destination:
        host: {{ .serviceName }}
        subset: production
        {{- with .servicePort }}
        port:
          number: {{ int . }}
        {{- end }}
      weight: {{ int $s.productionWeight }}
    - destination:
        host: {{ .serviceName }}
        subset: canary
        {{- with .servicePort }}
        port:
          number: {{ int . }}
        {{- end }}
      weight: {{ int $s.canaryWeight }}
      {{- with $setCookie }}
      headers:
        response:
          add:
            Set-Cookie: {{ . | quote }}
      {{- end }}
    {{- end }}
    {{- if gt (float64 $mirror) 0.0 }}
    mirror:
      {{- include "canary-lib.destination" (list . "canary") | nindent 6 }}
    mirrorPercentage:
      value: {{ $mirror }}
    {{- end }}
    {{- with $route }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  {{- with $ports.tls }}
  tls:
  {{- range . }}
  - match:
    - port: {{ int . }}
      sniHosts:
      - {{ $.serviceName }}
    route:
      {{- include "canary-lib.l4Destinations" (list $ .) | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- with $ports.tcp }}
  tcp:
  {{- range . }}
  - match:
    - port: {{ int . }}
    route:
      {{- include "canary-lib.l4Destinations" (list $ .) | nindent 4 }}
  {{- end }}
  {{- end }}
{{- end -}}

{{/*
canary-lib.hostMatches: "true" when an Istio host names the Service, as the
renderer's HostMatches decides: (list host serviceName namespace clusterDomain),
the short name, or name.namespace, name.namespace.svc or
name.namespace.svc.<clusterDomain>. Another namespace's Service of the same name,
or a domain that is not the cluster's, is not it.
*/}}
{{- define "canary-lib.hostMatches" -}}
{{- $host := index . 0 -}}
{{- $name := index . 1 -}}
{{- $ns := index . 2 -}}
{{- $base := printf "%s.%s" $name $ns -}}
{{- if or (eq $host $name) (and $ns (has $host (list $base (printf "%s.svc" $base) (printf "%s.svc.%s" $base (index . 3))))) -}}
true
{{- end -}}
{{- end -}}

{{/*
canary-lib.portPlan: which routes the Service's ports need, as the renderer decides
by Istio's protocol selection (appProtocol first, then the port name's prefix before
"-"; UDP and SCTP are not proxied; unnamed 25, 53, 3306 and 27017 are TCP): http
(any HTTP or sniffed port), tcp (the TCP and sniffed ports' numbers) and tls (the
TLS ports'). Without servicePorts: http only, the ports being taken for HTTP.
*/}}
{{- define "canary-lib.portPlan" -}}
{{- if not .servicePorts -}}
http: true
{{- else -}}
{{- $http := false -}}
{{- $tcp := list -}}
{{- $tls := list -}}
{{- range $i, $p := .servicePorts -}}
{{- if not (and (kindIs "map" $p) $p.port) -}}
{{- fail (printf "canary-lib (%s): servicePorts[%d] must be a Service port: {name: NAME, port: N, appProtocol: P}" $.name $i) -}}
{{- end -}}
{{- $class := include "canary-lib.portClass" $p -}}
{{- if or (eq $class "http") (eq $class "auto") }}{{ $http = true }}{{ end -}}
{{- if or (eq $class "tcp") (eq $class "auto") }}{{ $tcp = append $tcp (int $p.port) }}{{ end -}}
{{- if eq $class "tls" }}{{ $tls = append $tls (int $p.port) }}{{ end -}}
{{- end -}}
{{- if not (or $http $tcp $tls) -}}
{{- fail (printf "canary-lib (%s): Istio proxies none of servicePorts (UDP or SCTP only), so no route can split %s's traffic" .name .serviceName) -}}
{{- end -}}
{{- toYaml (dict "http" $http "tcp" $tcp "tls" $tls) -}}
{{- end -}}
{{- end -}}

{{/* canary-lib.portClass: a Service port -> http, tcp, tls, auto (Istio sniffs) or none (not proxied). */}}
{{- define "canary-lib.portClass" -}}
{{- $proto := upper (printf "%v" (.protocol | default "TCP")) -}}
{{- $name := printf "%v" (.name | default "") -}}
{{- $app := printf "%v" (.appProtocol | default "") -}}
{{- $std := dict "kubernetes.io/h2c" "http" "kubernetes.io/ws" "http" "kubernetes.io/wss" "tls" -}}
{{- if or (eq $proto "UDP") (eq $proto "SCTP") -}}
none
{{- else if hasKey $std $app -}}
{{- index $std $app -}}
{{- else -}}
{{- $n := lower (ternary $app $name (ne $app "")) -}}
{{- if hasPrefix "grpc-web" $n -}}
http
{{- else -}}
{{- $n = first (splitList "-" $n) -}}
{{- if has $n (list "http" "http2" "http_proxy" "grpc") -}}
http
{{- else if has $n (list "tcp" "mongo" "redis" "mysql") -}}
tcp
{{- else if has $n (list "https" "tls") -}}
tls
{{- else if eq $n "udp" -}}
none
{{- else if has (int .port) (list 25 53 3306 27017) -}}
tcp
{{- else -}}
auto
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* canary-lib.l4Destinations: (list spec port) -> the weighted pair of a tcp or tls route on that port. */}}
{{- define "canary-lib.l4Destinations" -}}
{{- $in := index . 0 -}}
{{- $port := index . 1 -}}
{{- $s := include "canary-lib.settings" $in | fromYaml -}}
{{- if $s.adopting -}}
- destination:
    host: {{ $in.serviceName }}
    port:
      number: {{ int $port }}
{{- else -}}
- destination:
    host: {{ $in.serviceName }}
    subset: production
    port:
      number: {{ int $port }}
  weight: {{ int $s.productionWeight }}
- destination:
    host: {{ $in.serviceName }}
    subset: canary
    port:
      number: {{ int $port }}
  weight: {{ int $s.canaryWeight }}
{{- end -}}
{{- end -}}

{{/*
canary-lib.gateway: Istio Gateway <gateway.name> (default <serviceName>-gateway) on
the ingress gateway pods, one server for gateway.hosts on gateway.port.
*/}}
{{- define "canary-lib.gateway" -}}
{{- $s := include "canary-lib.settings" . | fromYaml -}}
{{- $gw := .gateway | default dict -}}
{{- $protocol := index $gw "protocol" | default "HTTP" -}}
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: {{ $s.gatewayName }}
  {{- with (.serviceLabels | default .labels) }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  selector:
    {{- toYaml (index $gw "selector" | default (dict "istio" "ingressgateway")) | nindent 4 }}
  servers:
  - port:
      number: {{ index $gw "port" | default 80 | int }}
      name: {{ lower $protocol }}
      protocol: {{ $protocol }}
    hosts:
    {{- range (index $gw "hosts" | default (list "*")) }}
    - {{ . | quote }}
    {{- end }}
    {{- with index $gw "tls" }}
    tls:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end -}}

{{/*
canary-lib.autoscalers: HorizontalPodAutoscaler <name> for production and, while
canary pods run, its twin <name>-canary for the canary (minReplicas = the canary's
replicaCount), so that scaling one side never shifts the traffic ratio.
*/}}
{{- define "canary-lib.autoscalers" -}}
{{- $s := include "canary-lib.settings" . | fromYaml -}}
{{- if $s.autoscaled -}}
{{ include "canary-lib.autoscaler" (list . "production") }}
{{- if $s.canaryUp }}
---
{{ include "canary-lib.autoscaler" (list . "canary") }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* canary-lib.autoscaler: (list spec track) -> the HorizontalPodAutoscaler of one track. */}}
{{- define "canary-lib.autoscaler" -}}
{{- $in := index . 0 -}}
{{- $track := index . 1 -}}
{{- $s := include "canary-lib.settings" $in | fromYaml -}}
{{- $as := $in.autoscaling | default dict -}}
{{- $name := $in.name -}}
{{- $min := index $as "minReplicas" | default 1 | int -}}
{{- $max := index $as "maxReplicas" | int -}}
{{- if eq $track "canary" -}}
{{- $name = printf "%s-canary" $in.name -}}
{{- $min = int $s.canaryReplicas -}}
{{- if lt $max $min }}{{ $max = $min }}{{ end -}}
{{- end -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  {{- with $in.labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $min }}
  maxReplicas: {{ $max }}
  {{- if index $as "metrics" }}
  metrics:
    {{- toYaml (index $as "metrics") | nindent 4 }}
  {{- else if or (index $as "targetCPUUtilizationPercentage") (index $as "targetMemoryUtilizationPercentage") }}
  metrics:
    {{- with index $as "targetCPUUtilizationPercentage" }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ int . }}
    {{- end }}
    {{- with index $as "targetMemoryUtilizationPercentage" }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ int . }}
    {{- end }}
  {{- end }}
  {{- with index $as "behavior" }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
