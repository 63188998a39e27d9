package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	"github.com/helm-canary/helm-canary/internal/testhelm"
)

var cluster *localcluster.Cluster

// checkout is built once per run, concurrently with the cluster's start.
var checkout struct {
	done chan struct{}
	dir  string
	err  error
}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse() // for testing.Short; RunTests parses again, which is harmless
	if !testing.Short() {
		tmp, err := os.MkdirTemp("", "helm-canary-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		checkout.done = make(chan struct{})
		go func() {
			defer close(checkout.done)
			checkout.dir, checkout.err = buildCheckout(filepath.Join(tmp, "helm-canary"))
		}()
		// A test binary that stops early must not leave the build writing into a
		// removed directory.
		defer func() { <-checkout.done }()
	}
	defer func() {
		if metricsStarted.Load() {
			stopRolloutMetrics()
		}
	}()
	return localcluster.RunTests(m, localcluster.Options{Build: "all"}, &cluster)
}

// pluginCheckout is the directory users would `helm plugin install`: a copy of this
// checkout with bin/helm-canary built. A copy, so the tests neither use nor
// overwrite a stale bin/ in the working tree.
func pluginCheckout(t *testing.T) string {
	t.Helper()
	requireCluster(t)
	<-checkout.done
	if checkout.err != nil {
		t.Fatalf("preparing the plugin checkout: %v", checkout.err)
	}
	return checkout.dir
}

// buildCheckout copies the repository to dir and builds bin/helm-canary there with
// the plugin's install hook, the way `helm plugin install` does, so the build flags
// (version from plugin.yaml) have one source.
func buildCheckout(dir string) (string, error) {
	start := time.Now()
	root, err := testhelm.RepoRoot()
	if err != nil {
		return "", err
	}
	if err := testhelm.CopyCheckout(root, dir); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "e2e: building bin/helm-canary in a copy of %s with scripts/install-hook.sh\n", root)
	hook := exec.Command("sh", filepath.Join(dir, "scripts", "install-hook.sh"), "install")
	// From source: the tests run this working tree, not the release of its version.
	hook.Env = append(os.Environ(), "HELM_PLUGIN_DIR="+dir, "HELM_CANARY_FROM_SOURCE=1")
	hook.Stdout, hook.Stderr = os.Stderr, os.Stderr
	if err := hook.Run(); err != nil {
		return "", fmt.Errorf("scripts/install-hook.sh install: %w", err)
	}
	fmt.Fprintf(os.Stderr, "e2e: plugin checkout ready in %s\n", time.Since(start).Round(time.Millisecond))
	return dir, nil
}

func requireCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: needs a real kube-apiserver and helm binaries; not in -short mode")
	}
	if cluster == nil {
		t.Fatal("end-to-end: no cluster (TestMain did not start one)")
	}
}

var namespaces atomic.Int32

// newNamespace gives each test its own namespace, named after the test but cut to
// fit a DNS label (63 characters), with a counter to keep cut names apart.
func newNamespace(t *testing.T) string {
	t.Helper()
	requireCluster(t)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	name = fmt.Sprintf("%.55s-%d", name, namespaces.Add(1))
	if err := cluster.CreateNamespace(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	return name
}
