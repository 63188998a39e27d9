package release

import (
	"strings"
	"testing"
)

// The table names a newer revision that is not deployed apart from what runs.
func TestStatusTableNamesANewerRevision(t *testing.T) {
	st := &Status{Release: "shop", Namespace: "shop", Revision: 2, Status: "deployed", Stage: "10",
		Newer: &Revision{Revision: 3, Status: "pending-upgrade", Description: "Preparing upgrade", Stage: "50"}}
	var b strings.Builder
	if err := st.Write(&b, "table"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2         deployed  10", "Revision 3 is pending-upgrade, not deployed: its stage 50 is not what runs", "Helm says: Preparing upgrade", "interrupted"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestDestinationRuleDrift(t *testing.T) {
	dr := func(track string, policy bool) map[string]any {
		spec := map[string]any{"host": "reviews", "subsets": []any{
			map[string]any{"name": "production", "labels": map[string]any{"t": "production"}},
			map[string]any{"name": "canary", "labels": map[string]any{"t": track}},
		}}
		if policy {
			spec["trafficPolicy"] = map[string]any{"tls": map[string]any{"mode": "ISTIO_MUTUAL"}}
		}
		return map[string]any{"spec": spec}
	}
	if got, want := subsets(dr("production", false)), "production{t=production}, canary{t=production}"; got != want {
		t.Errorf("subsets = %s, want %s", got, want)
	}
	if got := specDiffers(dr("canary", false), dr("canary", true)); strings.Join(got, ",") != "trafficPolicy" {
		t.Errorf("specDiffers = %v, want [trafficPolicy]", got)
	}
	if got := specDiffers(dr("canary", true), dr("canary", true)); len(got) != 0 {
		t.Errorf("specDiffers of equal specs = %v", got)
	}
}

// Where the canary's pods could not get a version of their own, the table says
// what the dashboards show instead.
func TestStatusTableSaysWhenVersionsAreTheSame(t *testing.T) {
	st := &Status{Release: "bi", Namespace: "bi", Revision: 2, Status: "deployed", Stage: "10", Workloads: []WorkloadStatus{
		{Name: "reviews-v2", Service: "reviews", Versions: Versions{Production: "v2", Canary: "v2"}},
		{Name: "productpage", Service: "productpage", Versions: Versions{Production: "latest", Canary: "canary"}},
	}}
	var b strings.Builder
	if err := st.Write(&b, "table"); err != nil {
		t.Fatal(err)
	}
	if want := "VERSION reviews-v2: production and canary pods both report version v2 to Istio and Kiali"; !strings.Contains(b.String(), want) || !strings.Contains(b.String(), "reviews-v2 and reviews-v2-canary") {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
	if strings.Contains(b.String(), "VERSION productpage") {
		t.Errorf("a VERSION line for productpage, whose canary reports its own version:\n%s", b.String())
	}
}
