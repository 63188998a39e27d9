package e2e

import (
	"encoding/base64"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDryRunHidesSecrets: a chart with its password in a Secret (bitnami's
// auth.password shape). `stage --dry-run` with a new password shows that the
// Secret changes (as the canary's copy of it), and neither the old nor the new value, in clear or base64, as
// `helm upgrade --dry-run --hide-secret` does; so does the dry run of an install.
func TestDryRunHidesSecrets(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := filepath.Join(h.checkout, "test", "charts", "authapp")
		old, new := "first-S3cret-value", "second-S3cret-value"
		secrets := []string{old, new, base64.StdEncoding.EncodeToString([]byte(old)), base64.StdEncoding.EncodeToString([]byte(new)),
			"postgres://app:" + old, "postgres://app:" + new}
		noSecret := func(what, out string) {
			t.Helper()
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s prints the secret value %q:\n%s", what, s, out)
				}
			}
		}
		out := h.stage(t, ns, "stable", "web", chart, "--install", "--set", "auth.password="+old, "--dry-run")
		noSecret("stage stable --install --dry-run", out)
		if !strings.Contains(out, "Secret") {
			t.Errorf("install --dry-run does not show the Secret:\n%s", out)
		}
		h.stage(t, ns, "stable", "web", chart, "--install", "--set", "auth.password="+old)

		out = h.stage(t, ns, "10", "web", "--set", "auth.password="+new, "--set", "image.tag=1.28", "--dry-run")
		noSecret("stage 10 --dry-run with a new password", out)
		// Config is part of the version (hazard 12): production's Secret keeps the old
		// password and the canary reads a new copy, so the change shows as that copy,
		// its values redacted, and production's Secret does not change at all.
		if !regexp.MustCompile(`(?m)^\+\+\+ Secret \S*web-auth-canary \(new\)$`).MatchString(out) || !strings.Contains(out, "password: (redacted)") {
			t.Errorf("stage 10 --dry-run does not show the canary's copy of the Secret with its password redacted:\n%s", out)
		}
		if regexp.MustCompile(`(?m)^~~~ Secret \S*web-auth$`).MatchString(out) {
			t.Errorf("stage 10 --dry-run changes production's Secret (the new password must reach the canary's copy only):\n%s", out)
		}
		t.Logf("stage 10 --dry-run:\n%s", out)
	})
}

// TestDryRunComparesWithLive: weights edited by hand (50/50) are part of what
// staging 10 again changes; a dry run that compared only stored manifests would
// say "no changes" while the command puts 90/10 back.
func TestDryRunComparesWithLive(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		walkTo(t, h, ns, "10")
		if out := h.stage(t, ns, "10", "pp", "--dry-run"); !strings.Contains(out, "no changes") {
			t.Errorf("stage 10 --dry-run at 10, nothing edited: want no changes\n%s", out)
		}
		editWeights(t, ns, 50, 50)
		before := snapshot(t, ns)
		out := h.stage(t, ns, "10", "pp", "--dry-run")
		if !strings.Contains(out, "~~~ VirtualService /product-page-svc") || !strings.Contains(out, "-      weight: 50") || !strings.Contains(out, "+      weight: 90") {
			t.Errorf("stage 10 --dry-run after editing the weights to 50/50 by hand: want the VirtualService going from 50 to 90\n%s", out)
		}
		if strings.Contains(out, "Deployment") || strings.Contains(out, "~~~ Service") {
			t.Errorf("stage 10 --dry-run shows unchanged objects (live defaults or bookkeeping as changes):\n%s", out)
		}
		unchanged(t, "stage 10 --dry-run", before, snapshot(t, ns))
		t.Logf("stage 10 --dry-run after a hand edit:\n%s", out)
	})
}
