package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestPipelineWalk walks seed 001 twice on one cluster: with plain `helm upgrade
// --install` and helm-canary as the post-renderer (production pinned from the
// release with --release/--namespace) in one namespace, and with `helm canary
// stage` in another. After every stage the live objects of both must be the same.
// Pipeline mode's final is one upgrade with --stage=final; the plugin's is two; the
// end states must match.
func TestPipelineWalk(t *testing.T) {
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			h := newHelmEnv(t, major)
			pipeline, plugin := newNamespace(t), newNamespace(t)
			tags := map[string]string{"stable": "83"}
			for _, s := range seedSteps(h) {
				tag := tags[s.stage]
				if tag == "" {
					tag = "84"
				}
				args := []string{"upgrade", "--install", "pp", h.chartDir(), "-n", pipeline, "--set", "image.tag=" + tag}
				args = append(args, h.postRenderer("--stage="+s.stage, "--release=pp", "--namespace="+pipeline)...)
				h.mustRun(t, args...)
				h.stage(t, plugin, s.args...)

				what := fmt.Sprintf("stage %s: pipeline (%s) vs plugin (%s)", s.stage, pipeline, plugin)
				p, q := snapshot(t, pipeline), snapshot(t, plugin)
				sameObjects(t, what, p, q)
				// And both are seed 001's stage.
				if s.stage != "stable" {
					wantWeights(t, pipeline, "product-page-svc", weightsOf(t, s.stage))
				}
				production := "83"
				if s.stage == "swap" || s.stage == "final" {
					production = "84"
				}
				wantImages(t, "pipeline productpage at "+s.stage, p.Deployments["productpage"], productpageImage+":"+production)
			}
		})
	}
}

// TestPipelineStatus: `helm canary status` of a release staged by a `helm upgrade`
// pipeline reports the stage the pipeline rendered, as it does for a release staged
// with `helm canary stage` (the same state must read the same way, whichever way in).
func TestPipelineStatus(t *testing.T) {
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			h := newHelmEnv(t, major)
			ns := newNamespace(t)
			for _, s := range []struct{ stage, tag string }{{"stable", "83"}, {"10", "84"}} {
				args := []string{"upgrade", "--install", "pp", h.chartDir(), "-n", ns, "--set", "image.tag=" + s.tag}
				h.mustRun(t, append(args, h.postRenderer("--stage="+s.stage, "--release=pp", "--namespace="+ns)...)...)
			}
			wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})
			out := h.mustRun(t, "canary", "status", "pp", "-n", ns, "-o", "json")
			var st struct {
				Stage     string `json:"stage"`
				Workloads []struct {
					Stage   string         `json:"stage"`
					Weights map[string]int `json:"weights"`
				} `json:"workloads"`
			}
			if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Workloads) != 1 {
				t.Fatalf("status -o json: %v\n%s", err, out)
			}
			if w := st.Workloads[0]; w.Weights["production"] != 90 || w.Weights["canary"] != 10 {
				t.Errorf("status of the pipeline release at 10: weights %v, want 90/10", w.Weights)
			}
			if w := st.Workloads[0]; w.Stage != "10" || (st.Stage != "" && st.Stage != "10") {
				t.Errorf("status of a release a pipeline rendered at --stage=10 (live traffic 90/10, canary up) says stage %q (workload) / %q (release), want 10:\n%s", w.Stage, st.Stage, out)
			}
		})
	}
}

// TestPipelineMissingReleaseRefused: a pipeline at stage 10 whose --release is not
// found (a typo, or no --namespace: a post-renderer does not inherit helm's -n)
// would pin production to nothing and run the new version as production. It must
// fail the upgrade, name the release and namespace it looked in, and leave the
// release as it was.
func TestPipelineMissingReleaseRefused(t *testing.T) {
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			h := newHelmEnv(t, major)
			ns := newNamespace(t)
			upgrade := func(tag string, renderArgs ...string) []string {
				args := []string{"upgrade", "--install", "pp", h.chartDir(), "-n", ns, "--set", "image.tag=" + tag}
				return append(args, h.postRenderer(renderArgs...)...)
			}
			h.mustRun(t, upgrade("83", "--stage=stable", "--release=pp", "--namespace="+ns)...)
			before := h.lastRevision(t, "pp", ns)
			for _, c := range []struct {
				what          string
				args          []string
				release, look string
			}{
				{"no --namespace", []string{"--stage=10", "--release=pp"}, "pp", "default"},
				{"a typo in --release", []string{"--stage=10", "--release=pq", "--namespace=" + ns}, "pq", ns},
				{"final, no --namespace", []string{"--stage=final", "--release=pp"}, "pp", "default"},
			} {
				_, stderr, err := h.run(t, upgrade("84", c.args...)...)
				if err == nil {
					t.Errorf("%s: helm upgrade succeeded, want a refusal", c.what)
				}
				if after := h.lastRevision(t, "pp", ns); after != before {
					t.Errorf("%s: the last revision is %+v, want %+v unchanged", c.what, after, before)
				}
				wantImages(t, c.what+": productpage", getDeployment(t, ns, "productpage"), productpageImage+":83")
				why := stderr
				if major == 4 {
					log, _ := os.ReadFile(h.postRendererLog())
					why = string(log)
				}
				want := fmt.Sprintf("release %q not found in namespace %q", c.release, c.look)
				if !strings.Contains(why, want) || !strings.Contains(why, "--namespace") {
					t.Errorf("%s: the refusal does not say %s and how to fix it:\n%s", c.what, want, why)
				}
			}
			// The namespace given, the same stage goes through, pinned.
			h.mustRun(t, upgrade("84", "--stage=10", "--release=pp", "--namespace="+ns)...)
			wantImages(t, "productpage at 10", getDeployment(t, ns, "productpage"), productpageImage+":83")
			wantImages(t, "productpage-canary at 10", getDeployment(t, ns, "productpage-canary"), productpageImage+":84")
		})
	}
}

// TestPipelineStageReadBack: a release staged by a `helm upgrade` pipeline keeps its
// stage only in its manifest. At 100 with production already on the canary's images
// it must read as 100, not swap, so that `helm canary stage final` is still refused
// without swap; after the pipeline's final it must read as final, not stable.
func TestPipelineStageReadBack(t *testing.T) {
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			h := newHelmEnv(t, major)
			ns := newNamespace(t)
			pipeline := func(stage string) {
				args := []string{"upgrade", "--install", "pp", h.chartDir(), "-n", ns, "--set", "image.tag=83"}
				h.mustRun(t, append(args, h.postRenderer("--stage="+stage, "--release=pp", "--namespace="+ns)...)...)
			}
			status := func() (release, workload string) {
				out := h.mustRun(t, "canary", "status", "pp", "-n", ns, "-o", "json")
				var st struct {
					Stage     string `json:"stage"`
					Workloads []struct {
						Stage string `json:"stage"`
					} `json:"workloads"`
				}
				if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Workloads) != 1 {
					t.Fatalf("status -o json: %v\n%s", err, out)
				}
				return st.Stage, st.Workloads[0].Stage
			}

			pipeline("stable")
			pipeline("100")
			if rel, w := status(); rel != "100" || w != "100" {
				t.Errorf("a pipeline at --stage=100 (canary and production on the same images) reads as %q (release) / %q (workload), want 100", rel, w)
			}
			before := h.lastRevision(t, "pp", ns)
			_, stderr, err := h.run(t, "canary", "stage", "final", "pp", "-n", ns, "--drain-time", "0s")
			if err == nil || !strings.Contains(stderr, "needs stage swap first") {
				t.Errorf("stage final at 100 (no swap): err %v, want the refusal that asks for swap first:\n%s", err, stderr)
			}
			if after := h.lastRevision(t, "pp", ns); after != before {
				t.Errorf("the refused final made a revision: %+v, want %+v", after, before)
			}

			pipeline("swap")
			pipeline("final")
			if rel, w := status(); rel != "final" || w != "final" {
				t.Errorf("a pipeline at --stage=final reads as %q (release) / %q (workload), want final", rel, w)
			}
		})
	}
}
