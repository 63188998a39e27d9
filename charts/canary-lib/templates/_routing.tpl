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
{{- /* Every regex must be RE2: Envoy refuses the route otherwise. Templates cannot
catch an error, so an invalid one fails in mustRegexMatch, whose message quotes the
faulty part ("error parsing regexp: missing closing ): `(jason`"). */ -}}
{{- range $f := list "uri" "scheme" "method" "authority" -}}
{{- with index $m $f -}}
{{- if and (kindIs "map" .) (hasKey . "regex") -}}
{{- $_ := mustRegexMatch (printf "%v" .regex) "" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $f := list "headers" "queryParams" "withoutHeaders" -}}
{{- with index $m $f -}}
{{- range $_, $sm := . -}}
{{- if and (kindIs "map" $sm) (hasKey $sm "regex") -}}
{{- $_ := mustRegexMatch (printf "%v" $sm.regex) "" -}}
{{- end -}}
{{- end -}}
{{- end -}}
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
{{- $matches := include "canary-lib.mergeMatches" (list $weighted.match .matches (printf "(%s): httpRoute %s" $in.name ($weighted.name | default "helm-canary"))) | fromYamlArray -}}
{{- if $matches -}}
{{- $_ := set $route "match" $matches -}}
{{- $destination := dict "destination" (include "canary-lib.destination" (list $in .subset) | fromYaml) -}}
{{- with .setCookie -}}
{{- $_ := set $destination "headers" (dict "response" (dict "add" (dict "Set-Cookie" .))) -}}
{{- end -}}
{{- $_ := set $route "route" (list $destination) -}}
{{- $routes = append $routes $route -}}
{{- end -}}
{{- end -}}
{{- toYaml $routes -}}
{{- end -}}

{{/*
canary-lib.mergeMatches: (list own extra [where]) -> a YAML list: every (own, extra)
pair of match requests as the one request that holds exactly when both hold, as
the renderer computes it (canary-lib.intersectMatch). A pair no request satisfies is
left out, so the list can come out empty; no own matches: the extra ones. where
names the settings in error messages.
*/}}
{{- define "canary-lib.mergeMatches" -}}
{{- $own := index . 0 -}}
{{- $extra := index . 1 -}}
{{- $where := "" -}}
{{- if gt (len .) 2 }}{{ $where = index . 2 }}{{ end -}}
{{- $out := list -}}
{{- if not $own -}}
{{- $out = $extra -}}
{{- else -}}
{{- range $i, $o := $own -}}
{{- range $j, $e := $extra -}}
{{- $r := include "canary-lib.intersectMatch" (list $o $e (printf "%s: its match[%d] and the added match[%d] %s" $where $i $j (toJson $e))) | fromYaml -}}
{{- if hasKey $r "match" -}}
{{- $out = append $out $r.match -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
canary-lib.intersectMatch: (list a b where) -> YAML {match: REQUEST} for the Istio
HTTPMatchRequest that holds exactly when both hold, {} when no request does; fails
naming where when Istio cannot say both. The renderer's intersectMatch, field by
field: uri (with ignoreUriCase), scheme, method, authority, headers (names
case-insensitive), queryParams, withoutHeaders, port, sourceNamespace,
sourceLabels, gateways; name and statPrefix are a's, else b's.
*/}}
{{- define "canary-lib.intersectMatch" -}}
{{- $a := index . 0 | default dict -}}
{{- $b := index . 1 | default dict -}}
{{- $where := index . 2 -}}
{{- $out := deepCopy $a -}}
{{- $none := false -}}
{{- range $k := list "name" "statPrefix" -}}
{{- if and (not (index $a $k)) (index $b $k) }}{{ $_ := set $out $k (index $b $k) }}{{ end -}}
{{- end -}}
{{- if not (hasKey $a "uri") -}}
{{- if hasKey $b "uri" }}{{ $_ := set $out "uri" $b.uri }}{{ end -}}
{{- $_ := unset $out "ignoreUriCase" -}}
{{- if $b.ignoreUriCase }}{{ $_ := set $out "ignoreUriCase" true }}{{ end -}}
{{- else if hasKey $b "uri" -}}
{{- if ne (not $a.ignoreUriCase) (not $b.ignoreUriCase) -}}
{{- fail (printf "canary-lib %s: uri: one match ignores the uri's case and the other does not; Istio has one ignoreUriCase for both" $where) -}}
{{- end -}}
{{- $r := include "canary-lib.intersectString" (list $a.uri $b.uri "uri" (not (not $a.ignoreUriCase)) $where) | fromYaml -}}
{{- if hasKey $r "value" }}{{ $_ := set $out "uri" $r.value }}{{ else }}{{ $none = true }}{{ end -}}
{{- end -}}
{{- range $k := list "scheme" "method" "authority" -}}
{{- $r := include "canary-lib.intersectString" (list (index $a $k) (index $b $k) $k false $where) | fromYaml -}}
{{- if hasKey $r "value" -}}
{{- if not (kindIs "invalid" $r.value) }}{{ $_ := set $out $k $r.value }}{{ end -}}
{{- else -}}
{{- $none = true -}}
{{- end -}}
{{- end -}}
{{- range $k := list "headers" "queryParams" -}}
{{- $bm := index $b $k | default dict -}}
{{- if $bm -}}
{{- $m := deepCopy (index $a $k | default dict) -}}
{{- range $name := keys $bm | sortAlpha -}}
{{- $key := $name -}}
{{- range $have := keys $m -}}
{{- if and (eq $k "headers") (eq (lower $have) (lower $name)) }}{{ $key = $have }}{{ end -}}
{{- end -}}
{{- $r := include "canary-lib.intersectString" (list (index $m $key) (index $bm $name) (printf "%s %s" $k $name) false $where) | fromYaml -}}
{{- if hasKey $r "value" }}{{ $_ := set $m $key $r.value }}{{ else }}{{ $none = true }}{{ end -}}
{{- end -}}
{{- $_ := set $out $k $m -}}
{{- end -}}
{{- end -}}
{{- $bw := $b.withoutHeaders | default dict -}}
{{- if $bw -}}
{{- $m := deepCopy ($a.withoutHeaders | default dict) -}}
{{- range $name := keys $bw | sortAlpha -}}
{{- $key := $name -}}
{{- range $have := keys $m -}}
{{- if eq (lower $have) (lower $name) }}{{ $key = $have }}{{ end -}}
{{- end -}}
{{- $new := index $bw $name -}}
{{- if not (hasKey $m $key) -}}
{{- $_ := set $m $key $new -}}
{{- else if include "canary-lib.covers" (list $new (index $m $key)) -}}
{{- $_ := set $m $key $new -}}
{{- else if not (include "canary-lib.covers" (list (index $m $key) $new)) -}}
{{- fail (printf "canary-lib %s: withoutHeaders %s: %s and %s cannot be excluded with one Istio condition" $where $name (include "canary-lib.describeMatch" (index $m $key)) (include "canary-lib.describeMatch" $new)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $out "withoutHeaders" $m -}}
{{- end -}}
{{- if not $a.port -}}
{{- if $b.port }}{{ $_ := set $out "port" $b.port }}{{ end -}}
{{- else if and $b.port (ne (int $a.port) (int $b.port)) -}}
{{- $none = true -}}
{{- end -}}
{{- if not $a.sourceNamespace -}}
{{- if $b.sourceNamespace }}{{ $_ := set $out "sourceNamespace" $b.sourceNamespace }}{{ end -}}
{{- else if and $b.sourceNamespace (ne $a.sourceNamespace $b.sourceNamespace) -}}
{{- $none = true -}}
{{- end -}}
{{- with $b.sourceLabels -}}
{{- $m := deepCopy ($a.sourceLabels | default dict) -}}
{{- range $k, $v := . -}}
{{- if and (hasKey $m $k) (ne (toString (index $m $k)) (toString $v)) }}{{ $none = true }}{{ end -}}
{{- $_ := set $m $k $v -}}
{{- end -}}
{{- $_ := set $out "sourceLabels" $m -}}
{{- end -}}
{{- if and $a.gateways $b.gateways -}}
{{- $both := list -}}
{{- range $a.gateways }}{{ if has . $b.gateways }}{{ $both = append $both . }}{{ end }}{{ end -}}
{{- if $both }}{{ $_ := set $out "gateways" $both }}{{ else }}{{ $none = true }}{{ end -}}
{{- else if $b.gateways -}}
{{- $_ := set $out "gateways" $b.gateways -}}
{{- end -}}
{{- if not $none -}}
{{- dict "match" $out | toYaml -}}
{{- end -}}
{{- end -}}

{{/*
canary-lib.intersectString: (list a b what foldCase where) -> YAML {value: MATCH}
for the Istio StringMatch that holds exactly when both hold (value null when
neither is set; a match without exact, prefix or regex, header presence, holds for
anything), {} when no value does; fails where Istio cannot say both. foldCase:
exact and prefix compare case-insensitively (a uri with ignoreUriCase).
*/}}
{{- define "canary-lib.intersectString" -}}
{{- $a := index . 0 -}}
{{- $b := index . 1 -}}
{{- $what := index . 2 -}}
{{- $fold := index . 3 -}}
{{- $where := index . 4 -}}
{{- $r := dict -}}
{{- if kindIs "invalid" $a -}}
{{- $r = dict "value" $b -}}
{{- else if or (kindIs "invalid" $b) (not (or (hasKey $b "exact") (hasKey $b "prefix") (hasKey $b "regex"))) -}}
{{- $r = dict "value" $a -}}
{{- else if not (or (hasKey $a "exact") (hasKey $a "prefix") (hasKey $a "regex")) -}}
{{- $r = dict "value" $b -}}
{{- else -}}
{{- $ea := hasKey $a "exact" }}{{ $pa := hasKey $a "prefix" -}}
{{- $eb := hasKey $b "exact" }}{{ $pb := hasKey $b "prefix" -}}
{{- $va := toString (coalesce $a.exact $a.prefix $a.regex "") }}{{ $vb := toString (coalesce $b.exact $b.prefix $b.regex "") -}}
{{- if $fold }}{{ $va = lower $va }}{{ $vb = lower $vb }}{{ end -}}
{{- if and $ea $eb -}}
{{- if eq $va $vb }}{{ $r = dict "value" $a }}{{ end -}}
{{- else if and $ea $pb -}}
{{- if hasPrefix $vb $va }}{{ $r = dict "value" $a }}{{ end -}}
{{- else if and $pa $eb -}}
{{- if hasPrefix $va $vb }}{{ $r = dict "value" $b }}{{ end -}}
{{- else if and $pa $pb -}}
{{- if hasPrefix $vb $va }}{{ $r = dict "value" $a }}{{ else if hasPrefix $va $vb }}{{ $r = dict "value" $b }}{{ end -}}
{{- else if deepEqual $a $b -}}
{{- $r = dict "value" $a -}}
{{- else if and (or $ea $eb) (not $fold) -}}
{{- $exact := ternary $a $b $ea -}}
{{- $re := ternary $b $a $ea -}}
{{- if mustRegexMatch (printf "^(?:%s)$" $re.regex) (toString $exact.exact) }}{{ $r = dict "value" $exact }}{{ end -}}
{{- else -}}
{{- fail (printf "canary-lib %s: %s: %s and %s cannot both be required in one Istio match (Istio takes one condition per field); make one of them an exact value or a prefix within the other" $where $what (include "canary-lib.describeMatch" $a) (include "canary-lib.describeMatch" $b)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $r -}}
{{- end -}}

{{/* canary-lib.covers: (list a b) -> "true" when StringMatch a matches every value b matches. */}}
{{- define "canary-lib.covers" -}}
{{- $a := index . 0 }}{{ $b := index . 1 -}}
{{- if not (or (hasKey $a "exact") (hasKey $a "prefix") (hasKey $a "regex")) -}}true
{{- else if not (or (hasKey $b "exact") (hasKey $b "prefix") (hasKey $b "regex")) -}}
{{- else if deepEqual $a $b -}}true
{{- else if and (hasKey $a "prefix") (hasKey $b "exact") -}}{{ if hasPrefix (toString $a.prefix) (toString $b.exact) }}true{{ end }}
{{- else if and (hasKey $a "prefix") (hasKey $b "prefix") -}}{{ if hasPrefix (toString $a.prefix) (toString $b.prefix) }}true{{ end }}
{{- end -}}
{{- end -}}

{{/* canary-lib.describeMatch: StringMatch -> exact "v", prefix "v", regex "v" or present, as the renderer words it. */}}
{{- define "canary-lib.describeMatch" -}}
{{- if hasKey . "exact" }}{{ printf "exact %q" (toString .exact) }}
{{- else if hasKey . "prefix" }}{{ printf "prefix %q" (toString .prefix) }}
{{- else if hasKey . "regex" }}{{ printf "regex %q" (toString .regex) }}
{{- else }}present{{ end -}}
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
canary-lib.sharedName: (list workload namespace suffix) -> the name of an object in
the shared gateway namespace, as the renderer writes it: <workload>.<namespace>.<suffix>
(a namespace has no dot, so two teams' workloads of one name never share it); longer
than Kubernetes' 253 characters, its first 242 without trailing '-' or '.', a '-' and
10 hex digits of its SHA-256.
*/}}
{{- define "canary-lib.sharedName" -}}
{{- $n := printf "%s.%s.%s" (index . 0) (index . 1) (index . 2) -}}
{{- if le (len $n) 253 -}}
{{- $n -}}
{{- else -}}
{{- printf "%s-%s" (regexReplaceAll "[-.]+$" (trunc 242 $n) "") (trunc 10 (sha256sum $n)) -}}
{{- end -}}
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

{{/*
canary-lib.tagHeader: the request header the gateway filter sets for this workload:
userPercent.tagHeader, default x-canary-<name>.<release namespace> (two teams'
workloads of one name tag users apart).
*/}}
{{- define "canary-lib.tagHeader" -}}
{{- ((.routing | default dict).userPercent | default dict).tagHeader | default (printf "x-canary-%s.%s" .name .root.Release.Namespace) -}}
{{- end -}}

{{/*
canary-lib.userFilter: the gateway side of routing.userPercent at live stages. On
stock Istio (mesh istio) an EnvoyFilter <name>.<namespace>.canary-users running Lua at the
ingress gateway (ingress.namespace, default istio-system; ingress.selector, default
istio: ingressgateway) that tags each request for this workload by a hash of the
user header; with mesh asm, ASM's hash-tagging WasmPlugin
<name>.<namespace>.hash-tagging and an ASMHeaderPropagation <name>-tag-propagation
(in the release's namespace) for the x-canary prefix. Empty
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
  name: {{ include "canary-lib.sharedName" (list .name .root.Release.Namespace "hash-tagging") }}
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
  name: {{ include "canary-lib.sharedName" (list .name .root.Release.Namespace "canary-users") }}
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
        name: helm-canary.{{ .name }}.{{ .root.Release.Namespace }}
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
