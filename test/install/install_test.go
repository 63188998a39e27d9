package install

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFromRepositoryDownloads: `helm plugin install <clone>` on a machine without Go,
// with Helm 3 and Helm 4. The hook downloads the release archive for plugin.yaml's
// version and this platform, checks it against SHA256SUMS, and the plugin then works
// on the cluster. Helm 4 hands hooks the user's environment (HELM_CANARY_DOWNLOAD_URL)
// but no HELM_* variable of its own, which the hook does not need.
func TestFromRepositoryDownloads(t *testing.T) {
	ready(t)
	for _, major := range []int{3, 4} {
		t.Run(fmt.Sprintf("helm%d", major), func(t *testing.T) {
			t.Parallel()
			h := newHelmEnv(t, major, false, "HELM_CANARY_DOWNLOAD_URL="+url("good"))
			dir := checkout(t)
			out := h.mustRun(t, "plugin", "install", dir)
			if !strings.Contains(out, "downloading "+url("good/v"+releases.version+"/"+archive("helm-canary"))) || !strings.Contains(out, "sha256 verified") {
				t.Errorf("helm%d plugin install %s: the hook did not report a verified download:\n%s", major, dir, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "bin", "helm-canary")); err != nil {
				t.Fatalf("after the install hook: %v", err)
			}
			h.checkVersion(t)
			h.checkStage(t, filepath.Join(dir, "examples", "productpage"))
		})
	}
}

// TestHelm3Tarball: the Helm 3 tarball (what the hook downloads) is a complete legacy
// plugin for machines without network access: unpacked and installed as a directory,
// it runs its own binary and has no hook to run. (Helm 3 installs a tarball URL only
// when the server sends a gzip Content-Type, which release hosts need not do.)
func TestHelm3Tarball(t *testing.T) {
	ready(t)
	data, err := os.ReadFile(filepath.Join(releases.www, "good", "v"+releases.version, archive("helm-canary")))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "helm-canary")
	if err := untar(data, dir); err != nil {
		t.Fatal(err)
	}
	h := newHelmEnv(t, 3, false)
	if out := h.mustRun(t, "plugin", "install", dir); strings.Contains(out, "helm-canary:") {
		t.Errorf("helm3 plugin install of the unpacked tarball ran a hook:\n%s", out)
	}
	h.checkVersion(t)
}

// TestHelm4VerifiedTarballs: the README's Helm 4 install, `helm plugin install URL`
// of the cli/v1 and postrenderer/v1 tarballs, verified (Helm 4's default) against
// the published public key; both plugins then work on the cluster. Tampered
// tarballs, and tarballs signed by a key outside the keyring, are refused and leave
// nothing installed.
func TestHelm4VerifiedTarballs(t *testing.T) {
	ready(t)
	good := "good/v" + releases.version + "/"
	keyring := filepath.Join(releases.www, good, "helm-canary-signing-key.asc")

	t.Run("verified", func(t *testing.T) {
		t.Parallel()
		h := newHelmEnv(t, 4, false)
		for _, plugin := range []string{"canary", "canary-postrenderer"} {
			out := h.mustRun(t, "plugin", "install", url(good+archive(plugin)), "--keyring", keyring)
			for _, want := range []string{"Signed by: helm-canary test", "Plugin Hash Verified: sha256:", "Installed plugin: " + plugin} {
				if !strings.Contains(out, want) {
					t.Errorf("helm4 plugin install %s: output lacks %q:\n%s", archive(plugin), want, out)
				}
			}
		}
		list := h.mustRun(t, "plugin", "list")
		for _, want := range []string{"cli/v1", "postrenderer/v1"} {
			if !strings.Contains(list, want) {
				t.Errorf("helm4 plugin list lacks a %s plugin:\n%s", want, list)
			}
		}
		h.checkVersion(t)
		chart := filepath.Join(checkout(t), "examples", "productpage")
		h.checkStage(t, chart)
		// The post-renderer plugin's wrapper finds the binary next to it.
		out := h.mustRun(t, "template", "pp", chart, "--post-renderer", "canary-postrenderer", "--post-renderer-args", "--stage=10")
		if !strings.Contains(out, "name: productpage-canary") {
			t.Errorf("helm4 template --post-renderer canary-postrenderer --stage=10 renders no canary:\n%s", out)
		}
	})

	// RELEASING.md's check before publishing: a downloaded tarball installed from a
	// file, next to its .prov.
	t.Run("local file", func(t *testing.T) {
		t.Parallel()
		h := newHelmEnv(t, 4, false)
		for _, plugin := range []string{"canary", "canary-postrenderer"} {
			out := h.mustRun(t, "plugin", "install", filepath.Join(releases.www, good, archive(plugin)), "--keyring", keyring)
			if !strings.Contains(out, "Plugin Hash Verified: sha256:") {
				t.Errorf("helm4 plugin install of the file %s: not verified:\n%s", archive(plugin), out)
			}
		}
		h.checkVersion(t)
	})

	for _, c := range []struct{ name, dir, keyring, want string }{
		{"tampered", "tampered/v" + releases.version + "/", keyring, "sha256 sum does not match"},
		{"other key", good, filepath.Join(releases.www, "other-key.asc"), "plugin verification failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHelmEnv(t, 4, false)
			for _, plugin := range []string{"canary", "canary-postrenderer"} {
				_, stderr, err := h.run(t, "plugin", "install", url(c.dir+archive(plugin)), "--keyring", c.keyring)
				if err == nil || !strings.Contains(stderr, c.want) {
					t.Errorf("helm4 plugin install of %s%s: err %v, want a refusal saying %q; stderr:\n%s", c.dir, archive(plugin), err, c.want, stderr)
				}
			}
			if list := h.mustRun(t, "plugin", "list"); strings.Contains(list, "canary") {
				t.Errorf("a refused install left a plugin behind:\n%s", list)
			}
			if entries, _ := os.ReadDir(filepath.Join(h.home, "data", "plugins")); len(entries) != 0 {
				t.Errorf("a refused install left files in the plugins directory: %v", entries)
			}
		})
	}
}

// TestChecksumMismatch: an archive that does not match SHA256SUMS fails the hook
// with a message saying so, leaves no binary (not even a partial one), and is no
// reason to build from source: Go is on PATH here.
func TestChecksumMismatch(t *testing.T) {
	ready(t)
	h := newHelmEnv(t, 3, true, "HELM_CANARY_DOWNLOAD_URL="+url("badsums"))
	dir := checkout(t)
	stdout, stderr, err := h.run(t, "plugin", "install", dir)
	if err == nil {
		t.Fatalf("helm3 plugin install %s with a tampered archive succeeded:\n%s", dir, stdout)
	}
	for _, want := range []string{"checksum mismatch for " + url("badsums/v"+releases.version+"/"+archive("helm-canary")), "nothing was installed"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the hook's error lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stdout+stderr, "building") {
		t.Errorf("the hook fell back to a Go build after a checksum mismatch:\n%s\n%s", stdout, stderr)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "bin")); err == nil && len(entries) > 0 {
		t.Errorf("bin/ after a failed verification: %v, want nothing", entries)
	}
}

// TestGoFallback: with the release unreachable and Go installed, the hook builds the
// binary from the clone, stamped with the clone's commit.
func TestGoFallback(t *testing.T) {
	ready(t)
	h := newHelmEnv(t, 3, true, "HELM_CANARY_DOWNLOAD_URL="+unreachableURL(t))
	dir := checkout(t)
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "clone"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	head, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	out := h.mustRun(t, "plugin", "install", dir)
	if !strings.Contains(out, "no release binary") || !strings.Contains(out, "built "+filepath.Join(dir, "bin", "helm-canary")) {
		t.Errorf("helm3 plugin install %s: the hook did not report a Go build after a failed download:\n%s", dir, out)
	}
	want := fmt.Sprintf("helm-canary %s (commit %s,", releases.version, strings.TrimSpace(string(head)))
	if got := h.mustRun(t, "canary", "version"); !strings.HasPrefix(got, want) {
		t.Errorf("helm3 canary version after the Go build: %q, want %q...", got, want)
	}
}

// TestNoGoNoDownload: with the release unreachable and no Go, the hook fails and says
// exactly what to do.
func TestNoGoNoDownload(t *testing.T) {
	ready(t)
	h := newHelmEnv(t, 3, false, "HELM_CANARY_DOWNLOAD_URL="+unreachableURL(t))
	dir := checkout(t)
	_, stderr, err := h.run(t, "plugin", "install", dir)
	if err == nil {
		t.Fatal("helm3 plugin install succeeded without a download and without Go")
	}
	hook := "sh " + dir + "/scripts/install-hook.sh install"
	for _, want := range []string{"no release binary", "Go is not installed", "HELM_CANARY_DOWNLOAD_URL=", "https://go.dev/dl/", "and run: " + hook} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the hook's message lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "helm-canary")); err == nil {
		t.Error("bin/helm-canary exists after a failed install")
	}
}
