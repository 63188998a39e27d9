package renderer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	extensions "istio.io/api/extensions/v1alpha1"
	networking "istio.io/api/networking/v1"
	alpha3 "istio.io/api/networking/v1alpha3"
	typev1beta1 "istio.io/api/type/v1beta1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// UserBucket is the user-percentage hash: a user id's bucket 0..99. The gateway
// filter's Lua computes exactly this (a polynomial hash modulo a prime, with only
// integer-exact double arithmetic, since Envoy's LuaJIT has no 64-bit integers); the
// route simulator uses this function, and a test runs the generated Lua against it.
func UserBucket(id string) int {
	var h int64
	for i := 0; i < len(id); i++ {
		h = (h*31 + int64(id[i])) % 1000000007
	}
	return int(h % 100)
}

// Annotations on the user-percentage filter: package canaried reads them back for
// the route simulator.
const (
	AnnotationUserHeader    = "helm-canary.io/user-header"
	AnnotationTagHeader     = "helm-canary.io/tag-header"
	AnnotationCanaryPercent = "helm-canary.io/canary-percent"
)

func (o Options) ingress() Ingress {
	in := o.Ingress
	if in.Namespace == "" {
		in.Namespace = "istio-system"
	}
	if len(in.Selector) == 0 {
		in.Selector = map[string]string{"istio": "ingressgateway"}
	}
	return in
}

// routeGateways binds workloads' VirtualServices to their Gateway, renders the
// Gateways to create, and the gateway filters that tag users.
func (r *release) routeGateways() error {
	for _, w := range r.workloads {
		if w.canary == nil {
			continue
		}
		if gw := w.Gateway; gw != nil {
			for _, svc := range w.services {
				for _, doc := range r.vservices {
					if r.hostsMatch(doc, svc) {
						bindGateway(doc, gw)
					}
				}
			}
			if gw.Create {
				n, err := r.gatewayObject(w, gw)
				if err != nil {
					return err
				}
				if _, err := attach(w.canary, w.source, w.filename, n); err != nil {
					return err
				}
			}
		}
		if w.UserPercent != nil && w.live() {
			if errs := validation.IsDNS1123Label(w.ns); len(errs) > 0 {
				return fmt.Errorf("Deployment %q: namespace %q is not a Kubernetes namespace name (%s), and it names the user-percentage objects in the gateway's namespace", w.name, w.ns, strings.Join(errs, "; "))
			}
			if tag := w.tagHeader(); !isToken(tag) {
				return fmt.Errorf("Deployment %q: its user-percentage tag header %q is not an HTTP header name (RFC 7230 token); set userPercent.tagHeader for it", w.name, tag)
			}
			objs, err := r.userFilter(w)
			if err != nil {
				return err
			}
			for _, n := range objs {
				if _, err := attach(w.canary, w.source, w.filename, n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (r *release) hostsMatch(doc *document, svc *service) bool {
	for _, h := range stringList(doc.node, "spec", "hosts") {
		if r.hostMatches(h, svc) {
			return true
		}
	}
	return false
}

// bindGateway adds the gateway (keeping the mesh) and its hosts to a chart's
// VirtualService.
func bindGateway(doc *document, gw *Gateway) {
	spec := lookupCreate(doc.node.YNode(), "spec")
	gateways := field(spec, "gateways")
	if gateways == nil {
		gateways = &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq, Content: []*yaml.Node{stringNode("mesh")}}
		setField(spec, "gateways", gateways)
	}
	addString(gateways, gw.Name)
	if hosts := field(spec, "hosts"); hosts != nil {
		for _, h := range gw.Hosts {
			addString(hosts, h)
		}
	}
	doc.changed = true
}

func addString(seq *yaml.Node, s string) {
	for _, c := range seq.Content {
		if c.Value == s {
			return
		}
	}
	seq.Content = append(seq.Content, stringNode(s))
}

func (r *release) gatewayObject(w *workload, gw *Gateway) (*yaml.RNode, error) {
	port := gw.Port
	if port == 0 {
		port = 80
	}
	selector := gw.Selector
	if len(selector) == 0 {
		selector = map[string]string{"istio": "ingressgateway"}
	}
	hosts := gw.Hosts
	if len(hosts) == 0 {
		hosts = []string{"*"}
	}
	spec := &networking.Gateway{Selector: selector, Servers: []*networking.Server{{
		Port:  &networking.Port{Number: uint32(port), Name: fmt.Sprintf("http-%d", port), Protocol: "HTTP"},
		Hosts: hosts,
	}}}
	name, ns, _ := strings.Cut(gw.Name, "/")
	if ns != "" {
		name, ns = ns, name // "namespace/name"
	}
	return r.object(istioAPIVersion, "Gateway", name, ns, w.services[0], spec)
}

// userFilter is the gateway side of user percentages: on stock Istio an
// EnvoyFilter running Lua at the ingress gateway, on ASM its hash-tagging
// WasmPlugin and the header propagation of the tag prefix.
func (r *release) userFilter(w *workload) ([]*yaml.RNode, error) {
	in := r.opts.ingress()
	percent := w.Stage.CanaryWeight()
	if r.opts.Mesh == "asm" {
		cfg, err := structpb.NewStruct(map[string]any{"rules": []any{map[string]any{
			"header": w.UserPercent.Header, "modulo": 100, "tagHeader": w.tagHeader(),
			"policies": []any{map[string]any{"range": percent, "tagValue": TrackCanary}},
		}}})
		if err != nil {
			return nil, err
		}
		spec := &extensions.WasmPlugin{
			Selector:        &typev1beta1.WorkloadSelector{MatchLabels: in.Selector},
			Url:             "registry-cn-hangzhou.ack.aliyuncs.com/acs/asm-wasm-hash-tagging:v1.22.6.2-g72656ba-aliyun",
			ImagePullPolicy: extensions.PullPolicy_IfNotPresent,
			Phase:           extensions.PluginPhase_AUTHN,
			PluginConfig:    cfg,
		}
		plugin, err := r.object("extensions.istio.io/v1alpha1", "WasmPlugin", sharedName(w.name, w.ns, "hash-tagging"), in.Namespace, w.services[0], spec)
		if err != nil {
			return nil, err
		}
		r.annotateUserFilter(plugin, w, percent)
		// ASM's own CRD, not an Istio type: written as the seed shows it, built
		// node by node so that no name is ever read as YAML.
		prop := &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}
		setField(prop, "apiVersion", stringNode("istio.alibabacloud.com/v1beta1"))
		setField(prop, "kind", stringNode("ASMHeaderPropagation"))
		setField(lookupCreate(prop, "metadata"), "name", stringNode(w.name+"-tag-propagation"))
		if w.services[0].ns != "" {
			setField(lookupCreate(prop, "metadata"), "namespace", stringNode(w.services[0].ns))
		}
		setField(lookupCreate(prop, "spec"), "headerPrefixes", &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq,
			Content: []*yaml.Node{stringNode(strings.TrimSuffix(TagHeaderPrefix, "-"))}})
		return []*yaml.RNode{plugin, yaml.NewRNode(prop)}, nil
	}
	value, err := structpb.NewStruct(map[string]any{
		"name": "helm-canary." + w.name + "." + w.ns,
		"typed_config": map[string]any{
			"@type":      "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
			"inlineCode": userLua(w.UserPercent.Header, w.tagHeader(), percent),
		},
	})
	if err != nil {
		return nil, err
	}
	spec := &alpha3.EnvoyFilter{
		WorkloadSelector: &alpha3.WorkloadSelector{Labels: in.Selector},
		ConfigPatches: []*alpha3.EnvoyFilter_EnvoyConfigObjectPatch{{
			ApplyTo: alpha3.EnvoyFilter_HTTP_FILTER,
			Match: &alpha3.EnvoyFilter_EnvoyConfigObjectMatch{
				Context: alpha3.EnvoyFilter_GATEWAY,
				ObjectTypes: &alpha3.EnvoyFilter_EnvoyConfigObjectMatch_Listener{Listener: &alpha3.EnvoyFilter_ListenerMatch{
					FilterChain: &alpha3.EnvoyFilter_ListenerMatch_FilterChainMatch{Filter: &alpha3.EnvoyFilter_ListenerMatch_FilterMatch{
						Name:      "envoy.filters.network.http_connection_manager",
						SubFilter: &alpha3.EnvoyFilter_ListenerMatch_SubFilterMatch{Name: "envoy.filters.http.router"},
					}},
				}},
			},
			Patch: &alpha3.EnvoyFilter_Patch{Operation: alpha3.EnvoyFilter_Patch_INSERT_BEFORE, Value: value},
		}},
	}
	filter, err := r.object("networking.istio.io/v1alpha3", "EnvoyFilter", sharedName(w.name, w.ns, "canary-users"), in.Namespace, w.services[0], spec)
	if err != nil {
		return nil, err
	}
	r.annotateUserFilter(filter, w, percent)
	return []*yaml.RNode{filter}, nil
}

func (r *release) annotateUserFilter(n *yaml.RNode, w *workload, percent int) {
	a := lookupCreate(n.YNode(), "metadata", "annotations")
	setField(a, AnnotationUserHeader, stringNode(w.UserPercent.Header))
	setField(a, AnnotationTagHeader, stringNode(w.tagHeader()))
	setField(a, AnnotationCanaryPercent, stringNode(fmt.Sprint(percent)))
}

// userLua tags each request for one workload: canary for users whose bucket is
// below percent, production for the others; a request without the user header
// loses any tag it came with (clients cannot pick their side). The header names
// reach the code only as Lua string literals written by luaString, never in a
// comment: the filter runs in the shared ingress gateway.
func userLua(userHeader, tagHeader string, percent int) string {
	return fmt.Sprintf(`-- helm-canary: %[1]d%% of users tagged canary (the headers are in the annotations)
function helm_canary_bucket(id)
  local h = 0
  for i = 1, #id do
    h = (h * 31 + string.byte(id, i)) %% 1000000007
  end
  return h %% 100
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local id = headers:get(%[2]s)
  if id == nil or id == "" then
    headers:remove(%[3]s)
    return
  end
  if helm_canary_bucket(id) < %[1]d then
    headers:replace(%[3]s, "canary")
  else
    headers:replace(%[3]s, "production")
  end
end
`, percent, luaString(strings.ToLower(userHeader)), luaString(strings.ToLower(tagHeader)))
}

// luaString writes s as a Lua string literal that any Lua (5.1 to 5.4, LuaJIT)
// reads back byte for byte: printable ASCII as is, everything else (quotes,
// backslashes, control bytes, every byte of a multi-byte character) as a
// three-digit decimal escape, the one escape form every Lua knows. Go's %q is not
// Lua: Lua 5.1 has no \u escape, and %q leaves printable non-ASCII (U+2028) raw.
func luaString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "\\%03d", c)
	}
	b.WriteByte('"')
	return b.String()
}

// namespaceOf is where an object of namespace ns lands: its own, else the
// release's (Helm's --namespace), else Helm's default.
func (r *release) namespaceOf(ns string) string {
	switch {
	case ns != "":
		return ns
	case r.opts.Namespace != "":
		return r.opts.Namespace
	}
	return "default"
}

// sharedName names an object helm-canary puts in the shared gateway namespace for
// one workload: <workload>.<namespace>.<suffix>. Two teams' releases may both have
// a Deployment "web", but never in one namespace, and a namespace has no dot, so
// two workloads never share a name. Kubernetes allows 253 characters: a longer name
// keeps its start and ends in a hash of the whole (canary-lib computes the same).
func sharedName(workload, ns, suffix string) string {
	name := workload + "." + ns + "." + suffix
	const max = 253
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.TrimRight(name[:max-11], "-.") + "-" + hex.EncodeToString(sum[:])[:10]
}

// object wraps an Istio spec into an object in namespace ns (the Service's when
// empty), labelled like the Service.
func (r *release) object(apiVersion, kind, name, ns string, svc *service, spec proto.Message) (*yaml.RNode, error) {
	n, err := r.istioObject(kind, name, svc, spec)
	if err != nil {
		return nil, err
	}
	setField(n.YNode(), "apiVersion", stringNode(apiVersion))
	if ns != "" {
		setField(lookupCreate(n.YNode(), "metadata"), "namespace", stringNode(ns))
		reorder(lookup(n.YNode(), "metadata"), "name", "namespace")
	}
	return n, nil
}
