package libchart

import (
	"reflect"
	"strings"
	"testing"
)

// TestLibraryGatewayHostsNamingTheService: a gateway host that names the Service
// itself, by any name the renderer's host matcher takes for it (name.namespace,
// name.namespace.svc, the FQDN in the cluster's domain, in the release's namespace),
// is not added to the VirtualService a second time; another namespace's Service of
// the same name, or a domain that is not the cluster's, is a host like any other.
func TestLibraryGatewayHostsNamingTheService(t *testing.T) {
	hosts := "gateway.enabled=true,gateway.hosts={shop.example.com,product-page-svc.shop,product-page-svc.shop.svc," +
		"product-page-svc.shop.svc.corp.example,product-page-svc.shop.svc.cluster.local,product-page-svc.other-team.svc.corp.example}"
	for _, tc := range []struct {
		name   string
		domain string
		want   []string
	}{
		{"default domain", "", []string{"product-page-svc", "shop.example.com", "product-page-svc.shop.svc.corp.example", "product-page-svc.other-team.svc.corp.example"}},
		{"custom domain", "canary.clusterDomain=corp.example", []string{"product-page-svc", "shop.example.com", "product-page-svc.shop.svc.cluster.local", "product-page-svc.other-team.svc.corp.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sets := []string{at10.seedSets(productpageImage, productpageImage), hosts}
			if tc.domain != "" {
				sets = append(sets, tc.domain)
			}
			for _, tl := range tools(t) {
				set := parseObjects(t, tl.mustTemplate(t, exampleChart, renderArgs{namespace: "shop", sets: sets}))
				vs := set["VirtualService/product-page-svc"]
				if vs == nil {
					t.Fatalf("%s: no VirtualService product-page-svc", tl.name)
				}
				var got []string
				for _, h := range vs["spec"].(map[string]any)["hosts"].([]any) {
					got = append(got, h.(string))
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s: VirtualService hosts %v, want %v", tl.name, got, tc.want)
				}
			}
		})
	}
	t.Run("malformed domain", func(t *testing.T) {
		_, err := tools(t)[0].template(t, exampleChart, renderArgs{namespace: "shop",
			sets: []string{at10.seedSets(productpageImage, productpageImage), "canary.clusterDomain=Corp.Example"}})
		if err == nil || !strings.Contains(err.Error(), "clusterDomain") {
			t.Errorf("canary.clusterDomain=Corp.Example: %v", err)
		}
	})
}
