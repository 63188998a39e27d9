package testhelm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// HomeEnv is the environment that gives helm a home of its own under home, so that
// nothing of the user's Helm configuration, plugins, repositories or cache is read or
// written, and points it at kubeconfig.
func HomeEnv(home, kubeconfig string) []string {
	return []string{
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		// Helm 4.3 installs plugins into $HELM_DATA_HOME/plugins whatever HELM_PLUGINS
		// says, so the data home is what isolates plugin installs.
		"HELM_DATA_HOME=" + filepath.Join(home, "data"),
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		// Where canary-postrenderer's default log lands.
		"XDG_STATE_HOME=" + filepath.Join(home, "state"),
		"KUBECONFIG=" + kubeconfig,
	}
}

// Cmd is one helm binary with its environment.
type Cmd struct {
	Name    string // how logs and errors call it, e.g. "helm3"
	Bin     string
	Dir     string // working directory
	Env     []string
	Timeout time.Duration
}

// Run runs the binary with args and stdin (may be nil), logs the command line and its
// duration, and returns an error that carries stdout and stderr when it fails or
// outlives c.Timeout.
func (c Cmd) Run(t testing.TB, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	cmd.Env = c.Env
	cmd.Dir = c.Dir
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// A hook or plugin that leaves a child holding the pipes must not hang the test.
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err = cmd.Run()
	name := c.Name + " " + strings.Join(args, " ")
	t.Logf("%s (%s)", name, time.Since(start).Round(time.Millisecond))
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("%s: timed out after %s; stdout:\n%s\nstderr:\n%s", name, c.Timeout, out.String(), errOut.String())
	case err != nil:
		err = fmt.Errorf("%s: %w\nstdout:\n%s\nstderr:\n%s", name, err, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), err
}

// RepoRoot is the helm-canary module's root, found from a test package's directory
// two levels below it (test/e2e, test/install).
func RepoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(data), "module github.com/helm-canary/helm-canary\n") {
		return "", errors.New("must run from a package two levels below the helm-canary module's root (test/e2e, test/install)")
	}
	return root, nil
}

// CopyCheckout copies the source tree at root to dir without .git, build output
// (bin, dist) and caches: the directory a user clones and `helm plugin install`s.
// Untracked files are copied too: the tests run what is in the working tree.
func CopyCheckout(root, dir string) error {
	skip := map[string]bool{".git": true, "bin": true, ".cache": true, "dist": true}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if skip[rel] {
			if !d.IsDir() {
				// In a git worktree .git is a file, and SkipDir on a file would skip
				// the rest of the directory (everything after .git).
				return nil
			}
			return filepath.SkipDir
		}
		target := filepath.Join(dir, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		default: // sockets, symbolic links: nothing the build or the plugin needs
			return nil
		}
	})
}
