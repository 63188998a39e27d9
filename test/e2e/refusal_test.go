package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// refused runs a helm canary command that must be refused: non-zero exit, stderr
// containing every one of want, and nothing changed (revision and live objects).
func refused(t *testing.T, h *helmEnv, ns string, args []string, want ...string) {
	t.Helper()
	before, live := storedRevisions(t, "pp", ns), snapshot(t, ns)
	if before["1"] != "superseded" && before["1"] != "deployed" {
		t.Fatalf("release pp's stored revisions: %v, want revision 1 among them", before)
	}
	stdout, stderr, err := h.run(t, args...)
	what := strings.Join(args, " ")
	t.Logf("refused as it should be: %s", strings.TrimSpace(stderr))
	if err == nil {
		t.Errorf("helm%d %s succeeded, want it refused; stdout:\n%s", h.major, what, stdout)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("helm%d %s: stderr does not say %q:\n%s", h.major, what, w, stderr)
		}
	}
	if after := storedRevisions(t, "pp", ns); !maps.Equal(after, before) {
		t.Errorf("helm%d %s was refused but the revisions are %v, were %v", h.major, what, after, before)
	}
	unchanged(t, "after the refused "+what, live, snapshot(t, ns))
}

// TestRefusals: each refused command exits non-zero with a message that says why,
// and leaves the release's revision and the live objects as they were.
func TestRefusals(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "10")
		stage := func(args ...string) []string { return append([]string{"canary", "stage", "-n", ns}, args...) }

		refused(t, h, ns, stage("bogus", "pp"), `unknown stage "bogus"`)
		refused(t, h, ns, stage("101", "pp"), "between 0 and 100")
		refused(t, h, ns, stage("90", "nosuch"), `"nosuch"`, "not found")
		refused(t, h, ns, []string{"canary", "rollback", "nosuch", "-n", ns}, `"nosuch"`, "not found")
		refused(t, h, ns, stage("90", "pp", "--workload", "nosuch"), `workload "nosuch"`, "productpage")
		refused(t, h, ns, stage("swap", "pp"), "stage 100 first")
		refused(t, h, ns, stage("final", "pp"), "stage swap first")
		// A live stage with no canary pods would send its share to an empty subset.
		refused(t, h, ns, stage("90", "pp", "--canary-replicas", "0"), "Deployment productpage", "routes 90% of traffic to the canary", "no pods")
		// A missing release without --install, with and without a chart.
		refused(t, h, ns, stage("stable", "pp2", h.chartDir()), `"pp2"`, "--install")
		refused(t, h, ns, stage("10", "pp2"), `"pp2"`, "--install")
		if _, _, err := h.run(t, "status", "pp2", "-n", ns); err == nil {
			t.Errorf("release pp2 exists after refused stage commands")
		}
		// Usage errors.
		refused(t, h, ns, stage("10"), "STAGE RELEASE")
		refused(t, h, ns, stage("10", "pp", "-o", "xml"), "-o xml")

		h.stage(t, ns, "90", "pp")
		h.stage(t, ns, "100", "pp")
		refused(t, h, ns, stage("final", "pp"), "stage swap first")
		// swap and final promote what the canary ran: no new values or chart then.
		refused(t, h, ns, stage("swap", "pp", "--set", "image.tag=85"), "no new chart or values", "--force")
		// A changed chart is a new version; the same chart named again is not.
		refused(t, h, ns, stage("swap", "pp", changedChart(t, h.chartDir())), "no new chart or values", "--force")

		h.stage(t, ns, "swap", "pp")
		refused(t, h, ns, stage("swap", "pp", "--set", "image.tag=85"), "no new chart or values", "--force")
		refused(t, h, ns, stage("final", "pp", "--set", "image.tag=85", "--drain-time", "0s"), "no new chart or values", "--force")
		// The refusals left the walk where it was: final still completes.
		h.stage(t, ns, "final", "pp", "--drain-time", "0s")
		wantImages(t, "productpage at final", getDeployment(t, ns, "productpage"), productpageImage+":84")
		wantReplicas(t, "productpage-canary at final", getDeployment(t, ns, "productpage-canary"), 0)
	})
}

// TestDryRun: --dry-run prints a diff of the objects that would change and changes
// nothing.
func TestDryRun(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		// From stable, stage 10 is two upgrades: the canary's pods start with no
		// traffic, then traffic moves (hazard 2). --dry-run shows both, in order,
		// and applies neither.
		walkTo(t, h, ns, "stable")
		before, live := h.lastRevision(t, "pp", ns), snapshot(t, ns)
		out := h.stage(t, ns, "10", "pp", "--set", "image.tag=84", "--dry-run")
		t.Logf("stage 10 --dry-run at stable:\n%s", out)
		warm := strings.Index(out, "=== stage 0: canary pods starting, no traffic to them yet")
		traffic := strings.Index(out, "=== stage 10\n")
		if warm < 0 || traffic < warm {
			t.Errorf("stage 10 --dry-run at stable does not show the warm-up step, then stage 10:\n%s", out)
		} else if warmUp := out[warm:traffic]; !strings.Contains(warmUp, "productpage-canary") || strings.Contains(warmUp, "weight: 10\n") {
			t.Errorf("the warm-up step does not start the canary Deployment with no traffic:\n%s", warmUp)
		}
		if after := h.lastRevision(t, "pp", ns); after != before {
			t.Errorf("after stage 10 --dry-run the last revision is %+v, was %+v", after, before)
		}
		unchanged(t, "after stage 10 --dry-run at stable", live, snapshot(t, ns))
		h.stage(t, ns, seedSteps(h)[1].args...)

		before, live = h.lastRevision(t, "pp", ns), snapshot(t, ns)
		valuesBefore := h.releaseValues(t, "pp", ns)

		// Traffic only: the VirtualService changes.
		out = h.stage(t, ns, "90", "pp", "--dry-run")
		t.Logf("stage 90 --dry-run:\n%s", out)
		if !strings.Contains(out, "VirtualService") || !strings.Contains(out, "product-page-svc") {
			t.Errorf("stage 90 --dry-run does not name the VirtualService product-page-svc:\n%s", out)
		}
		if !strings.Contains(out, "weight: 90") {
			t.Errorf("stage 90 --dry-run does not show the new weight 90:\n%s", out)
		}
		// The canary Deployment records its stage in an annotation (metadata only:
		// no pod rolls); nothing else of a Deployment may change.
		if lines := deploymentChanges(out); len(lines) > 0 {
			t.Errorf("stage 90 --dry-run changes a Deployment beyond its stage annotation, but only traffic changes: %q\n%s", lines, out)
		}

		// A new version: the canary Deployment changes.
		out = h.stage(t, ns, "10", "pp", "--set", "image.tag=85", "--dry-run")
		t.Logf("stage 10 --set image.tag=85 --dry-run:\n%s", out)
		if !strings.Contains(out, "Deployment") || !strings.Contains(out, "productpage-canary") || !strings.Contains(out, ":85") {
			t.Errorf("stage 10 --set image.tag=85 --dry-run does not show the canary Deployment's new image:\n%s", out)
		}

		// The rollback: what changes is measured against what is live now (canary
		// up at 10%), not against the stable revision being restored.
		for _, args := range [][]string{{"canary", "stage", "-n", ns, "stable", "pp", "--dry-run"}, {"canary", "rollback", "pp", "-n", ns, "--dry-run"}} {
			out = h.mustRun(t, args...)
			t.Logf("%s:\n%s", strings.Join(args, " "), out)
			for _, want := range []string{"productpage-canary", "replicas: 0", "weight: 100"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s at stage 10 does not show %q (the canary going from 2 replicas and 10%% to none):\n%s", strings.Join(args, " "), want, out)
				}
			}
		}

		// final's two steps, without doing either.
		out = h.stage(t, ns, "final", "pp", "--force", "--dry-run", "--drain-time", "0s")
		if !strings.Contains(out, "VirtualService") {
			t.Errorf("stage final --dry-run does not name the VirtualService:\n%s", out)
		}

		if after := h.lastRevision(t, "pp", ns); after != before {
			t.Errorf("after --dry-run the last revision is %+v, was %+v", after, before)
		}
		unchanged(t, "after --dry-run", live, snapshot(t, ns))
		if v := h.releaseValues(t, "pp", ns); valueAt(v, "image.tag") != "84" || valueAt(v, "canary.stage") != "10" {
			t.Errorf("after --dry-run the values are %v, were %v", v, valuesBefore)
		}

		// At swap production already runs 84: a rollback's dry-run shows it going
		// back to 83, and changes nothing either.
		h.stage(t, ns, "90", "pp")
		h.stage(t, ns, "100", "pp")
		h.stage(t, ns, "swap", "pp")
		before, live = h.lastRevision(t, "pp", ns), snapshot(t, ns)
		out = h.stage(t, ns, "stable", "pp", "--dry-run")
		t.Logf("stage stable --dry-run at swap:\n%s", out)
		if !addsLine(out, "image: "+productpageImage+":83") {
			t.Errorf("stage stable --dry-run at swap does not show production's image going back to 83:\n%s", out)
		}
		if after := h.lastRevision(t, "pp", ns); after != before {
			t.Errorf("after stage stable --dry-run the last revision is %+v, was %+v", after, before)
		}
		unchanged(t, "after stage stable --dry-run", live, snapshot(t, ns))

		// --install --dry-run of a new release (in an empty namespace) installs
		// nothing.
		empty := newNamespace(t)
		out = h.stage(t, empty, "stable", "pp", h.chartDir(), "--install", "--dry-run")
		t.Logf("stage stable --install --dry-run:\n%s", out)
		for _, want := range []string{"Deployment", "productpage-canary", "VirtualService"} {
			if !strings.Contains(out, want) {
				t.Errorf("stage stable pp --install --dry-run does not name %s:\n%s", want, out)
			}
		}
		if _, _, err := h.run(t, "status", "pp", "-n", empty); err == nil {
			t.Errorf("release pp exists in %s after --install --dry-run", empty)
		}
		deployments, err := clients(t).kube.AppsV1().Deployments(empty).List(t.Context(), metav1.ListOptions{})
		if err != nil || len(deployments.Items) != 0 {
			t.Errorf("after --install --dry-run %s has Deployments (%v): %d", empty, err, len(deployments.Items))
		}
	})
}

// changedChart copies a chart with one default value changed: a new version.
func changedChart(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(dir))
	if err := os.CopyFS(out, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(out, "values.yaml")
	data, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(values, append(data, []byte("\nreplicaCount: 3\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// addsLine reports whether a diff adds a line that reads want, however indented
// (a list item's first key may carry its "- ").
func addsLine(diff, want string) bool {
	for _, line := range strings.Split(diff, "\n") {
		rest, ok := strings.CutPrefix(line, "+")
		if ok && strings.TrimLeft(strings.TrimSpace(rest), "- ") == want {
			return true
		}
	}
	return false
}

// deploymentChanges returns the changed lines of a --dry-run diff that belong to a
// Deployment, other than its helm-canary.io/stage annotation.
func deploymentChanges(diff string) []string {
	var changed []string
	inDeployment := false
	for _, line := range strings.Split(diff, "\n") {
		switch {
		case strings.HasPrefix(line, "~~~ ") || strings.HasPrefix(line, "+++ ") || strings.HasPrefix(line, "--- "):
			inDeployment = strings.HasPrefix(line[4:], "Deployment ")
		case inDeployment && (strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-")):
			if !strings.Contains(line, "helm-canary.io/stage:") {
				changed = append(changed, line)
			}
		}
	}
	return changed
}
