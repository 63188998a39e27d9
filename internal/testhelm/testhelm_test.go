package testhelm

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A git worktree has .git as a file; skipping it must not skip what sorts after it.
func TestCopyCheckoutSkipsBuildOutputOnly(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		".git":               "gitdir: /elsewhere\n",
		"bin/helm-canary":    "built",
		"dist/v1/x.tgz":      "built",
		".cache/go/x":        "cache",
		".github/workflow":   "kept",
		"go.mod":             "module x\n",
		"renderer/render.go": "package renderer\n",
		"zz/last":            "kept",
	}
	for name, data := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "copy")
	if err := CopyCheckout(root, dir); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			got = append(got, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".github/workflow", "go.mod", "renderer/render.go", "run.sh", "zz/last"}
	if !slices.Equal(got, want) {
		t.Errorf("copied %q, want %q", got, want)
	}
	if info, err := os.Stat(filepath.Join(dir, "run.sh")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("run.sh: %v, %v; want mode 0755 kept", info, err)
	}
}

func TestHomeEnvKeepsHelmAtHome(t *testing.T) {
	env := HomeEnv("/h", "/k")
	for _, want := range []string{"HELM_CONFIG_HOME=/h/config", "HELM_DATA_HOME=/h/data", "HELM_CACHE_HOME=/h/cache", "XDG_STATE_HOME=/h/state", "KUBECONFIG=/k"} {
		if !slices.Contains(env, want) {
			t.Errorf("HomeEnv lacks %s: %q", want, env)
		}
	}
}
