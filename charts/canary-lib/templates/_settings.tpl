{{/*
canary-lib.settings: the resolved canary state of one workload, as YAML; read it
back with `include "canary-lib.settings" $spec | fromYaml`. Every public template
calls it first, so a bad dict fails the render with a message naming the value.

  productionWeight, canaryWeight    0..100, adding up to 100
  productionReplicas, canaryReplicas
  productionImage, canaryImage      "repository:tag" (or just the repository)
  productionPullPolicy, canaryPullPolicy
  trackLabel                        the pod label key that tells the tracks apart
  autoscaled                        autoscaling.enabled
  canaryUp                          canary pods run (canaryReplicas > 0)
  adopting                          route to the host, not the subsets
  gateway                           a gateway is bound (enabled)
  gatewayName                       the gateway the VirtualService binds
  createGateway                     this chart renders that Gateway
  draining                          canary pods up with no traffic: final's first step, or a starting canary's warm-up
  live                              the routing extras apply: canary pods up, not draining
  mesh                              istio or asm
  clusterDomain                     the cluster's DNS domain (default cluster.local)
*/}}
{{- define "canary-lib.settings" -}}
{{- if not (kindIs "map" .) -}}
{{- fail "canary-lib: pass the templates a dict (see charts/canary-lib/README.md), e.g. include \"canary-lib.all\" (dict \"root\" $ \"name\" ...)" -}}
{{- end -}}
{{- $name := required "canary-lib: the dict needs \"name\": the workload's (production Deployment's) name" .name -}}
{{- if not .root -}}
{{- fail (printf "canary-lib (%s): the dict needs \"root\": the chart's root context ($)" $name) -}}
{{- end -}}
{{- $svc := required (printf "canary-lib (%s): the dict needs \"serviceName\": the Service whose traffic is split" $name) .serviceName -}}
{{- $selector := required (printf "canary-lib (%s): the dict needs \"selectorLabels\": the production Deployment's selector (it is immutable: keep the chart's own)" $name) .selectorLabels -}}
{{- $_ := required (printf "canary-lib (%s): the dict needs \"podSpecTemplate\": the name of the chart's template that renders the pod spec" $name) .podSpecTemplate -}}
{{- $track := .trackLabel | default "helm-canary.io/track" -}}
{{- if hasKey $selector $track -}}
{{- fail (printf "canary-lib (%s): selectorLabels must not contain the track label %s: production's selector is immutable and stays the chart's own" $name $track) -}}
{{- end -}}
{{- $podLabels := .podLabels | default $selector -}}
{{- range $k, $v := $selector -}}
{{- if ne (printf "%v" (index $podLabels $k)) (printf "%v" $v) -}}
{{- fail (printf "canary-lib (%s): podLabels must contain every selector label; %s=%v is missing" $name $k $v) -}}
{{- end -}}
{{- end -}}
{{- with .deploymentSpec -}}
{{- range $k := list "replicas" "selector" "template" -}}
{{- if hasKey $.deploymentSpec $k -}}
{{- fail (printf "canary-lib (%s): deploymentSpec must not set %s: canary-lib renders it" $name $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $p := .production | default dict -}}
{{- $c := .canary | default dict -}}
{{- $pPath := .productionPath | default "production" -}}
{{- $cPath := .canaryPath | default "canary" -}}

{{- /* Weights: either one alone implies the other. */ -}}
{{- $pw := 100 -}}
{{- $cw := 0 -}}
{{- $hasPW := not (kindIs "invalid" (index $p "weight")) -}}
{{- $hasCW := not (kindIs "invalid" (index $c "weight")) -}}
{{- if $hasPW -}}
{{- $pw = include "canary-lib.wholeNumber" (list (index $p "weight") (printf "%s.weight" $pPath) 100) | int -}}
{{- end -}}
{{- if $hasCW -}}
{{- $cw = include "canary-lib.wholeNumber" (list (index $c "weight") (printf "%s.weight" $cPath) 100) | int -}}
{{- end -}}
{{- if and $hasPW (not $hasCW) -}}
{{- $cw = sub 100 $pw -}}
{{- else if and $hasCW (not $hasPW) -}}
{{- $pw = sub 100 $cw -}}
{{- end -}}
{{- if ne (add $pw $cw) 100 -}}
{{- fail (printf "canary-lib (%s): %s.weight (%d) and %s.weight (%d) must add up to 100" $name $pPath (int $pw) $cPath (int $cw)) -}}
{{- end -}}

{{- /* Replicas: the canary defaults to production's count while it takes traffic, else 0. */ -}}
{{- $autoscaling := .autoscaling | default dict -}}
{{- $autoscaled := and (kindIs "map" $autoscaling) (eq (printf "%v" (index $autoscaling "enabled")) "true") -}}
{{- $pr := 1 -}}
{{- if not (kindIs "invalid" (index $p "replicaCount")) -}}
{{- $pr = include "canary-lib.wholeNumber" (list (index $p "replicaCount") (printf "%s.replicaCount" $pPath) -1) | int -}}
{{- end -}}
{{- $cr := 0 -}}
{{- if not (kindIs "invalid" (index $c "replicaCount")) -}}
{{- $cr = include "canary-lib.wholeNumber" (list (index $c "replicaCount") (printf "%s.replicaCount" $cPath) -1) | int -}}
{{- else if gt (int $cw) 0 -}}
{{- $cr = $pr -}}
{{- end -}}
{{- if and (gt (int $cw) 0) (eq (int $cr) 0) -}}
{{- fail (printf "canary-lib (%s): %s.weight is %d but %s.replicaCount is 0: that traffic would go to a subset with no pods; give the canary replicas first" $name $cPath (int $cw) $cPath) -}}
{{- end -}}
{{- if and (gt (int $pw) 0) (eq (int $pr) 0) (not $autoscaled) -}}
{{- fail (printf "canary-lib (%s): %s.weight is %d but %s.replicaCount is 0: that traffic would go to a subset with no pods" $name $pPath (int $pw) $pPath) -}}
{{- end -}}
{{- if $autoscaled -}}
{{- $_ := required (printf "canary-lib (%s): autoscaling.maxReplicas is required when autoscaling.enabled is true" $name) (index $autoscaling "maxReplicas") -}}
{{- end -}}

{{- /* Adoption: production pods that predate the track label are not in the production subset yet. */ -}}
{{- $adopting := eq (printf "%v" .adopting) "true" -}}
{{- if and $adopting (or (gt (int $cw) 0) (gt (int $cr) 0)) -}}
{{- fail (printf "canary-lib (%s): adopting routes %s by host, to every pod it selects, so the canary must be at weight 0 and 0 replicas; once production's pods carry %s=production, turn adopting off and then start the canary" $name $svc $track) -}}
{{- end -}}

{{- /* Images: the canary defaults to production's. */ -}}
{{- $pImage := index $p "image" | default dict -}}
{{- $cImage := index $c "image" | default dict -}}
{{- $pRepo := required (printf "canary-lib (%s): %s.image.repository is required" $name $pPath) (index $pImage "repository") -}}
{{- $pTag := index $pImage "tag" -}}
{{- $cRepo := index $cImage "repository" | default $pRepo -}}
{{- $cTag := $pTag -}}
{{- if not (or (kindIs "invalid" (index $cImage "tag")) (eq (printf "%v" (index $cImage "tag")) "")) -}}
{{- $cTag = index $cImage "tag" -}}
{{- end -}}
{{- $pPull := index $pImage "pullPolicy" | default "IfNotPresent" -}}
{{- $cPull := index $cImage "pullPolicy" | default $pPull -}}

{{- /* Gateway. */ -}}
{{- $gw := .gateway | default dict -}}
{{- $gwOn := eq (printf "%v" (index $gw "enabled")) "true" -}}
{{- $gwName := index $gw "name" | default (printf "%s-gateway" $svc) -}}
{{- $gwCreate := $gwOn -}}
{{- if and $gwOn (not (kindIs "invalid" (index $gw "create"))) -}}
{{- $gwCreate = eq (printf "%v" (index $gw "create")) "true" -}}
{{- end -}}

{{- /* Final's first step: traffic already back on production, canary pods still up. */ -}}
{{- $draining := eq (printf "%v" .draining) "true" -}}
{{- if and $draining (gt (int $cw) 0) -}}
{{- fail (printf "canary-lib (%s): draining is final's first step, with all traffic on production, but %s.weight is %d" $name $cPath (int $cw)) -}}
{{- end -}}

{{- /* Routing beyond weights: checked here, rendered by canary-lib.virtualService and canary-lib.userFilter. */ -}}
{{- $_ := include "canary-lib.checkRouting" . -}}
{{- $mesh := .mesh | default "istio" -}}
{{- if not (has $mesh (list "istio" "asm")) -}}
{{- fail (printf "canary-lib (%s): mesh %q: use istio or asm" $name (printf "%v" $mesh)) -}}
{{- end -}}

{{- /* The cluster's DNS domain: hosts name the Service as name.namespace.svc.<domain>. */ -}}
{{- $domain := printf "%v" (.clusterDomain | default "cluster.local") -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" $domain) -}}
{{- fail (printf "canary-lib (%s): clusterDomain %q is not a DNS domain (lower-case labels of letters, digits and '-', joined by dots, as kubelet's clusterDomain): e.g. cluster.local" $name $domain) -}}
{{- end -}}

{{- toYaml (dict
  "productionWeight" (int $pw) "canaryWeight" (int $cw)
  "productionReplicas" (int $pr) "canaryReplicas" (int $cr)
  "productionImage" (include "canary-lib.imageRef" (list $pRepo $pTag))
  "canaryImage" (include "canary-lib.imageRef" (list $cRepo $cTag))
  "productionPullPolicy" $pPull "canaryPullPolicy" $cPull
  "trackLabel" $track "autoscaled" $autoscaled "canaryUp" (gt (int $cr) 0)
  "adopting" $adopting
  "gateway" $gwOn "gatewayName" $gwName "createGateway" $gwCreate
  "draining" $draining "live" (and (gt (int $cr) 0) (not $draining)) "mesh" $mesh
  "clusterDomain" $domain) -}}
{{- end -}}

{{/*
canary-lib.wholeNumber: (list value path max) -> the value as a whole number in
0..max (no upper bound when max is -1), or a failure naming path.
*/}}
{{- define "canary-lib.wholeNumber" -}}
{{- $v := index . 0 -}}
{{- $path := index . 1 -}}
{{- $max := index . 2 -}}
{{- if not (or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "float64" $v)) -}}
{{- fail (printf "canary-lib: %s must be a whole number, got %q" $path (printf "%v" $v)) -}}
{{- end -}}
{{- if and (kindIs "float64" $v) (ne (float64 (int64 $v)) $v) -}}
{{- fail (printf "canary-lib: %s must be a whole number, got %v" $path $v) -}}
{{- end -}}
{{- if lt (int64 $v) 0 -}}
{{- fail (printf "canary-lib: %s must not be negative, got %v" $path $v) -}}
{{- end -}}
{{- if and (ge (int $max) 0) (gt (int64 $v) (int64 $max)) -}}
{{- fail (printf "canary-lib: %s must be at most %d, got %v" $path (int $max) $v) -}}
{{- end -}}
{{- printf "%d" (int64 $v) -}}
{{- end -}}

{{/* canary-lib.imageRef: (list repository tag) -> "repository:tag", or the repository alone without a tag. */}}
{{- define "canary-lib.imageRef" -}}
{{- $tag := printf "%v" (index . 1) -}}
{{- if or (kindIs "invalid" (index . 1)) (eq $tag "") -}}
{{- index . 0 -}}
{{- else -}}
{{- printf "%s:%s" (index . 0) $tag -}}
{{- end -}}
{{- end -}}

{{/* canary-lib.withTrack: (list labels trackLabel track) -> a new map: labels plus the track label. */}}
{{- define "canary-lib.withTrack" -}}
{{- $key := index . 1 -}}
{{- $out := dict $key (index . 2) -}}
{{- range $k, $v := index . 0 -}}
{{- if ne $k $key -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
