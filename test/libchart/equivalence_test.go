package libchart

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// productpageImage is the repository the goldens under test/golden were rendered
// with (examples/productpage's default).
const productpageImage = "docker.io/istio/examples-bookinfo-productpage-v1"

// state is one row of seed 001's values: what library mode is told at a stage.
type state struct {
	prodTag, canaryTag           string
	prodReplicas, canaryReplicas int
	prodWeight, canaryWeight     int
	adopting                     bool
}

// seedSets is the state as seed 001 writes it, one --set with the pairs in the
// seed's order, plus canaryLib.enabled=true.
func (s state) seedSets(prodRepo, canaryRepo string) string {
	pairs := []string{
		"productionDeployment.image.repository=" + prodRepo,
		"productionDeployment.image.tag=" + s.prodTag,
		fmt.Sprintf("productionDeployment.weight=%d", s.prodWeight),
		fmt.Sprintf("productionDeployment.replicaCount=%d", s.prodReplicas),
		"canaryDeployment.image.repository=" + canaryRepo,
		"canaryDeployment.image.tag=" + s.canaryTag,
		fmt.Sprintf("canaryDeployment.replicaCount=%d", s.canaryReplicas),
		fmt.Sprintf("canaryDeployment.weight=%d", s.canaryWeight),
		"canaryLib.enabled=true",
	}
	if s.adopting {
		pairs = append(pairs, "canaryLib.adopting=true")
	}
	return strings.Join(pairs, ",")
}

// The stages of the product contract in seed 001's values: production P=83, the new
// version N=84, two replicas each.
var (
	atStable    = state{"83", "83", 2, 0, 100, 0, false} // seed stage 1 and the rollback
	atAdopting  = state{"83", "83", 2, 0, 100, 0, true}  // stable before production's pods carry the track label
	at10        = state{"83", "84", 2, 2, 90, 10, false} // seed stage 2
	at90        = state{"83", "84", 2, 2, 10, 90, false} // seed stage 3
	at100       = state{"83", "84", 2, 2, 0, 100, false} // seed stage 4
	atSwap      = state{"84", "84", 2, 2, 0, 100, false} // seed stage 5
	atDraining  = state{"84", "84", 2, 2, 100, 0, false} // seed stage 6: final's first step
	atFinal     = state{"84", "84", 2, 0, 100, 0, false} // seed stage 7
	at37OneCopy = state{"83", "84", 2, 1, 63, 37, false} // any weight, --canary-replicas 1
)

// TestLibraryMatchesGoldens compares library mode, stage by stage, with the reviewed
// outputs of the post-renderer for the same production and canary images
// (test/golden/productpage-*/expected.yaml, rendered from examples/productpage's plain
// mode).
func TestLibraryMatchesGoldens(t *testing.T) {
	cases := []struct {
		golden string
		st     state
	}{
		{"productpage-rollback", atStable}, // stable with production labeled
		{"productpage-stable", atAdopting}, // stable right after adoption: routed by host
		{"productpage-10", at10},
		{"productpage-90", at90},
		{"productpage-100", at100},
		{"productpage-swap", atSwap},
		{"productpage-final", atFinal},
		{"productpage-37-one-canary", at37OneCopy},
		{"productpage-helm4-stable", atAdopting},
		{"productpage-helm4-10", at10},
	}
	for _, tl := range tools(t) {
		t.Run(tl.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.golden, func(t *testing.T) {
					golden, err := os.ReadFile(repo("test", "golden", c.golden, "expected.yaml"))
					if err != nil {
						t.Fatal(err)
					}
					lib := tl.mustTemplate(t, exampleChart, renderArgs{sets: []string{c.st.seedSets(productpageImage, productpageImage)}})
					compareSets(t, c.golden, parseObjects(t, string(golden)), parseObjects(t, lib),
						"test/golden/"+c.golden, "library mode ("+tl.name+")")
				})
			}
		})
	}
}

// TestLibraryMatchesRenderer walks the plain chart through every stage with
// `helm template | helm-canary render`, each stage pinned to the previous output as
// `helm canary stage` pins it to the deployed manifest, and compares each output with
// library mode given seed 001's values for that stage. The variants cover what the
// goldens do not: the HorizontalPodAutoscaler twin, a Gateway the chart ships (the
// renderer weights the chart's VirtualService), and an existing Gateway bound by name.
func TestLibraryMatchesRenderer(t *testing.T) {
	variants := []struct {
		name string
		sets []string // for both modes
		args []string // for every render
	}{
		{"plain", nil, nil},
		{"autoscaling", []string{"autoscaling.enabled=true"}, nil},
		{"gateway", []string{"gateway.enabled=true,gateway.hosts={bookinfo.example.com,*}"}, nil},
		{"existing-gateway", []string{"gateway.enabled=true,gateway.create=false,gateway.name=istio-system/public"}, nil},
		// The canary's autoscaler starts at the canary's replicaCount (2), above the
		// chart's maxReplicas: the renderer's --canary-replicas does the same.
		{"autoscaling-gateway", []string{"autoscaling.enabled=true,autoscaling.minReplicas=1,autoscaling.maxReplicas=1,gateway.enabled=true"}, []string{"--canary-replicas", "2"}},
	}
	renderTool := tools(t)[0]
	if !testing.Short() {
		renderTool = helmCLI(t, 3)
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			plain := func(tag string) string {
				return renderTool.mustTemplate(t, exampleChart, renderArgs{sets: append([]string{"image.tag=" + tag}, v.sets...)})
			}
			p83, p84 := plain("83"), plain("84")
			draining := filepath.Join(t.TempDir(), "draining.yaml")
			if err := os.WriteFile(draining, []byte("canary:\n  stage: final\n  draining: true\n"), 0o644); err != nil {
				t.Fatal(err)
			}

			r := func(in, production string, args ...string) string {
				return render(t, in, production, append(args, v.args...)...)
			}
			adopting := r(p83, "", "--stage", "stable")
			s10 := r(p84, adopting, "--stage", "10")
			s90 := r(p84, s10, "--stage", "90")
			s100 := r(p84, s90, "--stage", "100")
			swap := r(p84, s100, "--stage", "swap")
			steps := []struct {
				stage    string
				st       state
				rendered string
			}{
				{"stable (adopting)", atAdopting, adopting},
				{"10", at10, s10},
				{"90", at90, s90},
				{"100", at100, s100},
				{"swap", atSwap, swap},
				{"final (draining)", atDraining, r(p84, swap, "--config", draining)},
				{"final", atFinal, r(p84, swap, "--stage", "final")},
				{"stable (rollback from 90)", atStable, r(p83, s90, "--stage", "stable")},
			}
			for _, s := range steps {
				t.Run(s.stage, func(t *testing.T) {
					want := parseObjects(t, s.rendered)
					for _, tl := range tools(t) {
						sets := append([]string{s.st.seedSets(productpageImage, productpageImage)}, v.sets...)
						lib := tl.mustTemplate(t, exampleChart, renderArgs{sets: sets})
						compareSets(t, v.name+" at "+s.stage, want, parseObjects(t, lib),
							"helm template | helm-canary render", "library mode ("+tl.name+")")
					}
				})
			}
		})
	}
}
