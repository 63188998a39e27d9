package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRace starts two `helm canary stage` commands on one release at the same
// moment, a few times. At least one succeeds, a failure says clearly why, and the
// release stays consistent: the newest revision is deployed, none is left pending,
// and its values' stage is what the live VirtualService routes.
func TestRace(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		install := []string{"stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83"}
		rounds := [][2][]string{
			// Both install the release.
			{install, install},
			{{"10", "pp", "--set", "image.tag=84"}, {"10", "pp", "--set", "image.tag=84"}},
			{{"10", "pp"}, {"90", "pp"}},
			{{"90", "pp"}, {"10", "pp"}},
			{{"30", "pp"}, {"70", "pp"}},
		}
		for i, pair := range rounds {
			round := strings.ReplaceAll(fmt.Sprintf("%d (%s | %s)", i, strings.Join(pair[0], " "), strings.Join(pair[1], " ")), h.chartDir(), "CHART")
			type result struct {
				stage          string
				stdout, stderr string
				err            error
			}
			results := make([]result, 2)
			var ready, wg sync.WaitGroup
			start := make(chan struct{})
			for i, args := range pair {
				ready.Add(1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(t.Context(), helmTimeout)
					defer cancel()
					cmd := exec.CommandContext(ctx, h.bin, append([]string{"canary", "stage", "-n", ns}, args...)...)
					cmd.Env, cmd.Dir = h.env, h.home
					var out, errOut bytes.Buffer
					cmd.Stdout, cmd.Stderr = &out, &errOut
					cmd.WaitDelay = 10 * time.Second
					ready.Done()
					<-start
					err := cmd.Run()
					results[i] = result{args[0], out.String(), errOut.String(), err}
				}()
			}
			ready.Wait()
			close(start)
			wg.Wait()

			var won []string
			for _, r := range results {
				if r.err == nil {
					won = append(won, r.stage)
					continue
				}
				t.Logf("round %s: stage %s failed: %v\n%s", round, r.stage, r.err, r.stderr)
				msg := strings.ToLower(r.stderr)
				// "another command made revision N": the other command's revision came
				// between this one's warm-up and its traffic step (hazard 2's two steps).
				if !strings.Contains(msg, "in progress") && !strings.Contains(msg, "already exists") && !strings.Contains(msg, "in use") && !strings.Contains(msg, "another command made") {
					t.Errorf("round %s: stage %s failed without saying another operation is in progress or the revision already exists:\n%s", round, r.stage, r.stderr)
				}
			}
			if len(won) == 0 {
				t.Fatalf("round %s: both commands failed", round)
			}
			t.Logf("round %s: succeeded: %v", round, won)

			history := h.history(t, "pp", ns)
			for _, e := range history {
				if strings.HasPrefix(e.Status, "pending") {
					t.Errorf("round %s: revision %d is left %s; history %+v", round, e.Revision, e.Status, history)
				}
			}
			last := history[len(history)-1]
			if last.Status != "deployed" {
				t.Errorf("round %s: the newest revision %+v is not deployed; history %+v", round, last, history)
			}
			deployed := 0
			for _, e := range history {
				if e.Status == "deployed" {
					deployed++
				}
			}
			if deployed != 1 {
				t.Errorf("round %s: %d revisions are deployed, want 1; history %+v", round, deployed, history)
			}
			stage := valueAt(h.releaseValues(t, "pp", ns), "canary.stage")
			got, want := getRouteWeights(t, ns, "product-page-svc"), weightsOf(t, stage)
			if stage == "stable" && maps.Equal(got, map[string]int64{"": 100}) {
				// A fresh install routes by host until production's pods carry the
				// track label (hazard 2): all traffic on production too.
				want = got
			}
			if !maps.Equal(got, want) {
				t.Errorf("round %s: the release's values say stage %s (weights %v), the live VirtualService routes %v", round, stage, want, got)
			}
			if len(won) == 1 && stage != won[0] {
				t.Errorf("round %s: only stage %s succeeded, but the release is at stage %s", round, won[0], stage)
			}
			wantImages(t, "productpage after round "+round, getDeployment(t, ns, "productpage"), productpageImage+":83")
			if i > 0 {
				canary := getDeployment(t, ns, "productpage-canary")
				wantImages(t, "productpage-canary after round "+round, canary, productpageImage+":84")
				wantReplicas(t, "productpage-canary after round "+round, canary, 2)
			}
		}
	})
}
