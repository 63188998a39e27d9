{{/*
Routing beyond weights, the renderer's per-workload settings (its
canary.workloads.<name> entry): match, sticky, userPercent and mirror. They apply
at the live stages only (canary pods up, not draining): canary-lib.virtualService
puts canary-lib.extraRoutes ahead of the weighted route and decorates that route
(sticky cookie, mirror); canary-lib.userFilter tags users at the ingress gateway.
*/}}

{{/* canary-lib.checkRouting: fails, naming the value, unless routing, mesh and ingress are well formed. */}}
{{- define "canary-lib.checkRouting" -}}
{{- $name := .name -}}
{{- $path := .routingPath | default "routing" -}}
{{- $r := .routing | default dict -}}
{{- if not (kindIs "map" $r) -}}
{{- fail (printf "canary-lib (%s): %s must be a dict with match, sticky, userPercent or mirror" $name $path) -}}
{{- end -}}
{{- range $k, $_ := $r -}}
{{- if not (has $k (list "match" "sticky" "userPercent" "mirror")) -}}
{{- fail (printf "canary-lib (%s): %s.%s: unknown key; %s takes match, sticky, userPercent and mirror" $name $path $k $path) -}}
{{- end -}}
{{- end -}}
{{- with $r.match -}}
{{- if not (kindIs "slice" .) -}}
{{- fail (printf "canary-lib (%s): %s.match must be a list of Istio HTTPMatchRequests" $name $path) -}}
{{- end -}}
{{- range $i, $m := . -}}
{{- if not (kindIs "map" $m) -}}
{{- fail (printf "canary-lib (%s): %s.match[%d] must be an Istio HTTPMatchRequest, e.g. {headers: {end-user: {exact: jason}}}" $name $path $i) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with $r.sticky -}}
{{- if not (and (kindIs "map" .) (kindIs "string" .cookie) .cookie) -}}
{{- fail (printf "canary-lib (%s): %s.sticky needs a cookie name: {cookie: NAME, maxAge: SECONDS}" $name $path) -}}
{{- end -}}
{{- if not (include "canary-lib.isToken" .cookie) -}}
{{- fail (printf "canary-lib (%s): %s.sticky.cookie %q is not a cookie name (RFC 6265: letters, digits and !#$%%&'*+-.^_`|~; no spaces, '=', ';' or attributes): name the cookie only, canary-lib writes its value, Path and Max-Age" $name $path .cookie) -}}
{{- end -}}
{{- if not (kindIs "invalid" .maxAge) -}}
{{- $_ := include "canary-lib.wholeNumber" (list .maxAge (printf "%s.sticky.maxAge" $path) -1) -}}
{{- end -}}
{{- end -}}
{{- with $r.userPercent -}}
{{- if not (and (kindIs "map" .) (kindIs "string" .header) .header) -}}
{{- fail (printf "canary-lib (%s): %s.userPercent needs the header that identifies a user: {header: NAME}" $name $path) -}}
{{- end -}}
{{- if not (include "canary-lib.isToken" .header) -}}
{{- fail (printf "canary-lib (%s): %s.userPercent.header %q is not an HTTP header name (RFC 7230 token: letters, digits and !#$%%&'*+-.^_`|~)" $name $path .header) -}}
{{- end -}}
{{- if not (or (kindIs "invalid" .tagHeader) (kindIs "string" .tagHeader)) -}}
{{- fail (printf "canary-lib (%s): %s.userPercent.tagHeader must be a header name" $name $path) -}}
{{- end -}}
{{- if and .tagHeader (not (include "canary-lib.isToken" .tagHeader)) -}}
{{- fail (printf "canary-lib (%s): %s.userPercent.tagHeader %q is not an HTTP header name (RFC 7230 token: letters, digits and !#$%%&'*+-.^_`|~)" $name $path .tagHeader) -}}
{{- end -}}
{{- $tag := include "canary-lib.tagHeader" $ -}}
{{- if not (include "canary-lib.isToken" $tag) -}}
{{- fail (printf "canary-lib (%s): the user-percentage tag header %q is not an HTTP header name (RFC 7230 token); set %s.userPercent.tagHeader" $name $tag $path) -}}
{{- end -}}
{{- end -}}
{{- with $r.mirror -}}
{{- if not (kindIs "map" .) -}}
{{- fail (printf "canary-lib (%s): %s.mirror must be a dict: {percent: N}" $name $path) -}}
{{- end -}}
{{- $p := .percent -}}
{{- if not (or (kindIs "invalid" $p) (kindIs "int" $p) (kindIs "int64" $p) (kindIs "float64" $p)) -}}
{{- fail (printf "canary-lib (%s): %s.mirror.percent must be a number, got %q" $name $path (printf "%v" $p)) -}}
{{- end -}}
{{- if and (not (kindIs "invalid" $p)) (or (lt (float64 $p) 0.0) (gt (float64 $p) 100.0)) -}}
{{- fail (printf "canary-lib (%s): %s.mirror.percent %v must be between 0 and 100" $name $path $p) -}}
{{- end -}}
{{- end -}}
{{- with .ingress -}}
{{- if not (and (kindIs "map" .) (or (not .selector) (kindIs "map" .selector))) -}}
{{- fail (printf "canary-lib (%s): ingress must be a dict: {namespace: NAMESPACE, selector: {LABEL: VALUE}}" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
canary-lib.extraRoutes: (list spec stickyCookie) -> the http routes that go ahead of
the weighted route at live stages, as a YAML list (read it with fromYamlArray):
helm-canary-sticky, helm-canary-match, helm-canary-users-canary and
helm-canary-users-production, in that order. Each is a copy of the weighted route
(httpRoute: timeouts, retries...) without its mirror, named <httpRoute.name or
helm-canary>-<suffix>, its matches ANDed with the route's own, sent whole to one
subset.
*/}}
{{- define "canary-lib.extraRoutes" -}}
{{- $in := index . 0 -}}
{{- $stickyCookie := index . 1 -}}
{{- $s := include "canary-lib.settings" $in | fromYaml -}}
{{- $r := $in.routing | default dict -}}
{{- $extras := list -}}
{{- if $s.live -}}
{{- with $r.sticky -}}
{{- $cookie := printf "%s=%s" .cookie (include "canary-lib.stickyValue" $in) -}}
{{- $match := dict "headers" (dict "cookie" (dict "regex" (printf `^(.*?;\s*)?(%s)(;.*)?$` (regexQuoteMeta $cookie)))) -}}
{{- $extras = append $extras (dict "suffix" "sticky" "subset" "canary" "matches" (list $match) "setCookie" $stickyCookie) -}}
{{- end -}}
{{- with $r.match -}}
{{- $extras = append $extras (dict "suffix" "match" "subset" "canary" "matches" .) -}}
{{- end -}}
{{- with $r.userPercent -}}
{{- $tag := include "canary-lib.tagHeader" $in -}}
{{- range $side := list "canary" "production" -}}
{{- $match := dict "headers" (dict $tag (dict "exact" $side)) -}}
{{- $extras = append $extras (dict "suffix" (printf "users-%s" $side) "subset" $side "matches" (list $match)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $weighted := omit ($in.httpRoute | default dict) "mirror" "mirrorPercentage" -}}
{{- $routes := list -}}
{{- range $extras -}}
{{- $route := deepCopy $weighted -}}
{{- $_ := set $route "name" (printf "%s-%s" ($weighted.name | default "helm-canary") .suffix) -}}
{{- $_ := set $route "match" (include "canary-lib.mergeMatches" (list $weighted.match .matches) | fromYamlArray) -}}
{{- $destination := dict "destination" (include "canary-lib.destination" (list $in .subset) | fromYaml) -}}
{{- with .setCookie -}}
{{- $_ := set $destination "headers" (dict "response" (dict "add" (dict "Set-Cookie" .))) -}}
{{- end -}}
{{- $_ := set $route "route" (list $destination) -}}
{{- $routes = append $routes $route -}}
{{- end -}}
{{- toYaml $routes -}}
{{- end -}}

{{/*
canary-lib.mergeMatches: (list own extra) -> a YAML list: every (own, extra) pair of
match requests as one, the extra's headers, queryParams and withoutHeaders added to
the own ones (the extra's entry wins for the same name) and its other fields used
where the own request has none. No own matches: the extra ones.
*/}}
{{- define "canary-lib.mergeMatches" -}}
{{- $own := index . 0 | default (list dict) -}}
{{- $extra := index . 1 -}}
{{- $out := list -}}
{{- range $o := $own -}}
{{- range $e := $extra -}}
{{- $m := deepCopy $o -}}
{{- range $k, $v := $e -}}
{{- if not (hasKey $m $k) -}}
{{- $_ := set $m $k $v -}}
{{- else if has $k (list "headers" "queryParams" "withoutHeaders") -}}
{{- $merged := deepCopy (index $m $k) -}}
{{- range $hk, $hv := $v -}}
{{- $_ := set $merged $hk $hv -}}
{{- end -}}
{{- $_ := set $m $k $merged -}}
{{- end -}}
{{- end -}}
{{- $out = append $out $m -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* canary-lib.destination: (list spec subset) -> an Istio Destination: the Service, the subset, servicePort. */}}
{{- define "canary-lib.destination" -}}
{{- $in := index . 0 -}}
host: {{ $in.serviceName }}
subset: {{ index . 1 }}
{{- with $in.servicePort }}
port:
  number: {{ int . }}
{{- end }}
{{- end -}}

{{/*
canary-lib.stickyCookie: the Set-Cookie value of the canary's responses,
"NAME=VALUE; Path=/; Max-Age=N" (no Max-Age when maxAge is 0 or unset); empty
unless routing.sticky is set.
*/}}
{{- define "canary-lib.stickyCookie" -}}
{{- with (.routing | default dict).sticky -}}
{{- printf "%s=%s; Path=/" .cookie (include "canary-lib.stickyValue" $) -}}
{{- if and .maxAge (gt (int64 .maxAge) 0) -}}
{{- printf "; Max-Age=%d" (int64 .maxAge) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
canary-lib.stickyValue: the sticky cookie's value, which names the canary's version
so that a new canary does not inherit the users the previous one kept: as the
renderer computes it, FNV-1a (32 bits, 8 hex digits) of the workload's name, a NUL
byte and the canary containers' images joined by ",".
*/}}
{{- define "canary-lib.stickyValue" -}}
{{- $pod := include "canary-lib.podSpec" (list . "canary") | fromYaml -}}
{{- $images := list -}}
{{- range $pod.containers -}}
{{- if hasKey . "image" }}{{ $images = append $images (printf "%v" .image) }}{{ end -}}
{{- end -}}
{{- include "canary-lib.fnv32a" (printf "%s\x00%s" .name (join "," $images)) -}}
{{- end -}}

{{/*
canary-lib.fnv32a: string -> its 32-bit FNV-1a hash as 8 hex digits (Go's
hash/fnv New32a). Neither Go templates nor sprig have it, so it is spelt out in
arithmetic: for each byte, XOR it into the low byte of the hash (bit by bit), then
multiply by the FNV prime modulo 2^32 (the product fits in 64 bits).
*/}}
{{- define "canary-lib.fnv32a" -}}
{{- $h := 2166136261 -}}
{{- range $i := until (len $) -}}
{{- $byte := index $ $i -}}
{{- $low := mod $h 256 -}}
{{- $xor := 0 -}}
{{- range $bit := list 1 2 4 8 16 32 64 128 -}}
{{- if ne (mod (div $low $bit) 2) (mod (div $byte $bit) 2) -}}
{{- $xor = add $xor $bit -}}
{{- end -}}
{{- end -}}
{{- $h = mod (mul (add (sub $h $low) $xor) 16777619) 4294967296 -}}
{{- end -}}
{{- printf "%08x" $h -}}
{{- end -}}

{{/*
canary-lib.isToken: string -> "true" when it is an HTTP token (RFC 7230 tchar; RFC
6265 cookie names are the same tokens), else empty: nothing that could end a
header, a cookie or a Lua string.
*/}}
{{- define "canary-lib.isToken" -}}
{{- if and (kindIs "string" .) (regexMatch "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" .) -}}true{{- end -}}
{{- end -}}

{{/*
canary-lib.luaString: string -> a Lua string literal that every Lua reads back byte
for byte, as the renderer writes it: printable ASCII as is, quotes, backslashes and
every other byte as a three-digit decimal escape.
*/}}
{{- define "canary-lib.luaString" -}}
{{- $s := . -}}
"
{{- range $i := until (len $s) -}}
{{- $c := int (index $s $i) -}}
{{- if and (ge $c 32) (lt $c 127) (ne $c 34) (ne $c 92) -}}
{{- printf "%c" $c -}}
{{- else -}}
{{- printf "\\%03d" $c -}}
{{- end -}}
{{- end -}}
"
{{- end -}}

{{/* canary-lib.tagHeader: the request header the gateway filter sets for this workload: userPercent.tagHeader, default x-canary-<name>. */}}
{{- define "canary-lib.tagHeader" -}}
{{- ((.routing | default dict).userPercent | default dict).tagHeader | default (printf "x-canary-%s" .name) -}}
{{- end -}}

{{/*
canary-lib.userFilter: the gateway side of routing.userPercent at live stages. On
stock Istio (mesh istio) an EnvoyFilter <name>-canary-users running Lua at the
ingress gateway (ingress.namespace, default istio-system; ingress.selector, default
istio: ingressgateway) that tags each request for this workload by a hash of the
user header; with mesh asm, ASM's hash-tagging WasmPlugin <name>-hash-tagging and an
ASMHeaderPropagation <name>-tag-propagation for the x-canary prefix. Empty
otherwise.
*/}}
{{- define "canary-lib.userFilter" -}}
{{- $s := include "canary-lib.settings" . | fromYaml -}}
{{- $users := (.routing | default dict).userPercent -}}
{{- if and $users $s.live -}}
{{- $ingress := .ingress | default dict -}}
{{- $namespace := $ingress.namespace | default "istio-system" -}}
{{- $selector := $ingress.selector | default (dict "istio" "ingressgateway") -}}
{{- $tag := include "canary-lib.tagHeader" . -}}
{{- $percent := int $s.canaryWeight -}}
{{- $labels := .serviceLabels | default .labels -}}
{{- if eq $s.mesh "asm" -}}
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: {{ .name }}-hash-tagging
  namespace: {{ $namespace }}
  {{- with $labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  annotations:
    {{- include "canary-lib.userAnnotations" (list $users.header $tag $percent) | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
  url: registry-cn-hangzhou.ack.aliyuncs.com/acs/asm-wasm-hash-tagging:v1.22.6.2-g72656ba-aliyun
  imagePullPolicy: IfNotPresent
  phase: AUTHN
  pluginConfig:
    rules:
    - header: {{ $users.header | quote }}
      modulo: 100
      tagHeader: {{ $tag | quote }}
      policies:
      - range: {{ $percent }}
        tagValue: canary
---
apiVersion: istio.alibabacloud.com/v1beta1
kind: ASMHeaderPropagation
metadata:
  name: {{ .name }}-tag-propagation
spec:
  headerPrefixes:
  - x-canary
{{- else -}}
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: {{ .name }}-canary-users
  namespace: {{ $namespace }}
  {{- with $labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  annotations:
    {{- include "canary-lib.userAnnotations" (list $users.header $tag $percent) | nindent 4 }}
spec:
  workloadSelector:
    labels:
      {{- toYaml $selector | nindent 6 }}
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: GATEWAY
      listener:
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
            subFilter:
              name: envoy.filters.http.router
    patch:
      operation: INSERT_BEFORE
      value:
        name: helm-canary.{{ .name }}
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
          inlineCode: |
            {{- include "canary-lib.userLua" (list $users.header $tag $percent) | nindent 12 }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* canary-lib.userAnnotations: (list userHeader tagHeader percent) -> the gateway filter's annotations, read by helm-canary route. */}}
{{- define "canary-lib.userAnnotations" -}}
helm-canary.io/user-header: {{ index . 0 | quote }}
helm-canary.io/tag-header: {{ index . 1 | quote }}
helm-canary.io/canary-percent: {{ index . 2 | quote }}
{{- end -}}

{{/*
canary-lib.userLua: (list userHeader tagHeader percent) -> the gateway filter's Lua,
the renderer's to the byte, the header names only in Lua string literals written by
canary-lib.luaString (never in a comment): users whose bucket (a polynomial hash of the user
header's value modulo a prime, then modulo 100) is below percent are tagged canary,
the others production; a request without the user header loses any tag it came
with.
*/}}
{{- define "canary-lib.userLua" -}}
{{- $header := index . 0 -}}
{{- $tag := index . 1 -}}
{{- $percent := index . 2 -}}
-- helm-canary: {{ $percent }}% of users tagged canary (the headers are in the annotations)
function helm_canary_bucket(id)
  local h = 0
  for i = 1, #id do
    h = (h * 31 + string.byte(id, i)) % 1000000007
  end
  return h % 100
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local id = headers:get({{ include "canary-lib.luaString" (lower $header) }})
  if id == nil or id == "" then
    headers:remove({{ include "canary-lib.luaString" (lower $tag) }})
    return
  end
  if helm_canary_bucket(id) < {{ $percent }} then
    headers:replace({{ include "canary-lib.luaString" (lower $tag) }}, "canary")
  else
    headers:replace({{ include "canary-lib.luaString" (lower $tag) }}, "production")
  end
end
{{- end -}}
