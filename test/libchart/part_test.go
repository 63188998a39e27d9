package libchart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helm-canary/helm-canary/renderer"
)

// TestLibraryParts: canary.part=workloads and canary.part=mesh split library mode's
// output as `helm-canary render --part` splits a stream: the two are the objects of
// the whole render, each in one of them, the mesh part holding exactly the routing
// objects (one Argo CD application per cluster, issue 12), and the same as the
// renderer's own parts for the same stage.
func TestLibraryParts(t *testing.T) {
	dir := t.TempDir()
	values := filepath.Join(dir, "canary.yaml")
	// Seed 002 on ASM, plus a Gateway: every kind of routing object canary-lib makes.
	block := "canary:\n  mesh: asm\n" + usersBlock
	if err := os.WriteFile(values, []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	gateway := "gateway.enabled=true,gateway.hosts={bookinfo.example.com}"
	for _, tl := range tools(t) {
		t.Run(tl.name, func(t *testing.T) {
			for name, st := range map[string]state{"stable": atStable, "10": at10, "100": at100, "swap": atSwap, "final": atFinal} {
				t.Run(name, func(t *testing.T) {
					template := func(part string) string {
						sets := []string{st.seedSets(productpageImage, productpageImage), gateway}
						if part != "" {
							sets = append(sets, "canary.part="+part)
						}
						return tl.mustTemplate(t, exampleChart, renderArgs{valueFiles: []string{values}, sets: sets})
					}
					all := template("")
					wantW, wantM, err := renderer.SplitParts([]byte(all))
					if err != nil {
						t.Fatal(err)
					}
					if len(strings.TrimSpace(string(wantM))) == 0 || len(strings.TrimSpace(string(wantW))) == 0 {
						t.Fatalf("the whole render lacks a part:\n%s", all)
					}
					w, m := parseObjects(t, template("workloads")), parseObjects(t, template("mesh"))
					compareSets(t, "workloads at "+name, parseObjects(t, string(wantW)), w, "the whole render's workloads", "canary.part=workloads")
					compareSets(t, "mesh at "+name, parseObjects(t, string(wantM)), m, "the whole render's routing objects", "canary.part=mesh")
					for key := range m {
						if kind, _, _ := strings.Cut(key, "/"); kind == "Service" || kind == "Deployment" || kind == "HorizontalPodAutoscaler" {
							t.Errorf("canary.part=mesh renders %s", key)
						}
					}
					if _, ok := m["VirtualService/product-page-svc"]; !ok {
						t.Errorf("canary.part=mesh lacks the VirtualService: %v", m.keys())
					}
					if _, ok := w["Service/product-page-svc"]; !ok {
						t.Errorf("canary.part=workloads lacks the Service: %v", w.keys())
					}
				})
			}
			_, err := tl.template(t, exampleChart, renderArgs{sets: []string{at10.seedSets(productpageImage, productpageImage), "canary.part=routing"}})
			wantError(t, "canary.part=routing", err, []string{`canary.part "routing"`, "workloads", "mesh"})
		})
	}
}
