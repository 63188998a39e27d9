package istiocheck

import "testing"

// The allow-list accepts the findings it explains and nothing next to them: the
// same code about other objects or other causes is still a problem.
func TestAllowedIsNarrow(t *testing.T) {
	shadow := Message{Level: "Warning", Origin: "validation", Object: "VirtualService shop/reviews",
		Message: "2 errors occurred:\n\t* virtualService rule #1 match #0 is not used (duplicate/overlapping match in rule \"helm-canary-match\")\n\t* virtualService rule #1 not used (all matches used by prior rules)\n\n"}
	unused := Message{Level: "Warning", Origin: "analyze", Code: "IST0130", Object: "VirtualService shop/reviews",
		Message: "Warning [IST0130] (VirtualService shop/reviews stdin:634) VirtualService rule #1 not used (all matches used by prior rules)."}
	self := Message{Level: "Error", Origin: "analyze", Code: "IST0109", Object: "VirtualService shop/cache-kv",
		Message: "Error [IST0109] (VirtualService shop/cache-kv stdin:131) The VirtualServices shop/cache-kv,shop/cache-kv associated with mesh gateway define the same host */cache-kv.shop.svc.cluster.local which can lead to undefined behavior."}
	two := self
	two.Message = "Error [IST0109] (VirtualService shop/cache-kv stdin:131) The VirtualServices shop/cache-kv,shop/other associated with mesh gateway define the same host */cache-kv.shop.svc.cluster.local which can lead to undefined behavior."
	userShadow := shadow
	userShadow.Message = "virtualService rule #1 match #0 is not used (duplicate/overlapping match in rule \"jason\")"
	gateway := Message{Level: "Error", Origin: "analyze", Code: "IST0101", Object: "VirtualService shop/bookinfo",
		Message: "Error [IST0101] (VirtualService shop/bookinfo) Referenced gateway not found: \"istio-system/ingressgateway\""}
	host := Message{Level: "Error", Origin: "analyze", Code: "IST0101", Object: "VirtualService shop/bookinfo",
		Message: "Error [IST0101] (VirtualService shop/bookinfo) Referenced host not found: \"reviews\""}
	absent := Message{Level: "Warning", Origin: "analyze", Code: "IST0132", Object: "VirtualService shop/product-page-svc",
		Message: "Warning [IST0132] (VirtualService shop/product-page-svc stdin:158) one or more host [product-page-svc] defined in VirtualService shop/product-page-svc not found in Gateway istio-system/public."}
	public := gateway
	public.Object, public.Message = absent.Object, "Error [IST0101] (VirtualService shop/product-page-svc stdin:158) Referenced gateway not found: \"istio-system/public\""
	for _, tc := range []struct {
		name string
		m    Message
		all  []Message
		want bool
	}{
		{"a match route shadowing the chart's route", shadow, []Message{shadow, unused}, true},
		{"IST0130 for that route", unused, []Message{shadow, unused}, true},
		{"IST0130 with no helm-canary match route ahead", unused, []Message{unused}, false},
		{"IST0130 next to a chart's own shadowing rule", unused, []Message{userShadow, unused}, false},
		{"a chart's own shadowing rule", userShadow, []Message{userShadow}, false},
		{"one VirtualService conflicting with itself", self, []Message{self}, true},
		{"two VirtualServices for one host", two, []Message{two}, false},
		{"a gateway outside the release", gateway, []Message{gateway}, true},
		{"a host that does not exist", host, []Message{host}, false},
		{"hosts of a gateway outside the release", absent, []Message{public, absent}, true},
		{"hosts missing from a gateway the release renders", absent, []Message{absent}, false},
		{"hosts missing from another gateway than the absent one", absent, []Message{gateway, absent}, false},
	} {
		if got := allowed(tc.m, tc.all, DefaultDomain); got != tc.want {
			t.Errorf("%s: allowed %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A route to a short name whose DestinationRule names the FQDN in another cluster
// domain is accepted only there: in cluster.local it is a missing subset.
func TestAllowedOtherDomain(t *testing.T) {
	subset := Message{Level: "Error", Origin: "analyze", Code: "IST0101", Object: "VirtualService shop/storefront",
		Message: "Error [IST0101] (VirtualService shop/storefront stdin:146) Referenced host+subset in destinationrule not found: \"cart-api+production\""}
	if allowed(subset, []Message{subset}, DefaultDomain) || allowed(subset, []Message{subset}, "") {
		t.Error("a missing DestinationRule subset is accepted in cluster.local")
	}
	if !allowed(subset, []Message{subset}, "corp.example") {
		t.Error("a short host's subset in a corp.example cluster is refused")
	}
}
