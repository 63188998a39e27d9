package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Binaries runs hack/testbin.sh with target what ("cluster", "helm" or "all") and
// returns the directory holding etcd, kube-apiserver, helm3, helm4 and
// istio-crds.yaml. The script caches its builds, so only the first call on a machine
// is slow (10-15 minutes); its progress goes to os.Stderr so that wait is visible.
func Binaries(ctx context.Context, what string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "testbin.sh"), what)
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/testbin.sh %s: %w", what, err)
	}
	// The script promises the directory on its last line of stdout.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("hack/testbin.sh %s: last line of output %q is not a directory", what, dir)
	}
	return dir, nil
}

// repoRoot finds the clone holding hack/testbin.sh: first from this source file's
// path (works for `go test` and `go run` from anywhere), then by walking up from the
// working directory (for -trimpath builds, where the source path is a module path).
func repoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "hack", "testbin.sh")); err == nil {
				if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
					return dir, nil
				}
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("cannot find the repository root (a directory with go.mod and hack/testbin.sh)")
}
