package localcluster

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

// RunTests is a whole TestMain: it starts one cluster for the package's tests,
// stores it in *cluster, runs the tests, stops the cluster and returns the exit code:
//
//	var cluster *localcluster.Cluster
//
//	func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, localcluster.Options{}, &cluster)) }
//
// With -short it starts nothing and leaves *cluster nil; tests that need it skip on
// testing.Short(). Otherwise failing to build the binaries or to start is a failure,
// never a skip: CI must run these tests for real. If a test panics or times out, the
// deferred Stop does not run; on Linux the servers still die with the test binary
// (see sysProcAttr) but the temporary directory is left behind.
func RunTests(m *testing.M, opts Options, cluster **Cluster) int {
	flag.Parse() // testing.Short needs parsed flags; m.Run does not parse them again.
	if testing.Short() {
		return m.Run()
	}
	ctx := context.Background()
	// Built first so the start time printed below is the cluster's alone.
	var err error
	if opts.BinDir, err = opts.binDir(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
		return 1
	}
	start := time.Now()
	c, err := Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
		return 1
	}
	defer c.Stop()
	fmt.Fprintf(os.Stderr, "localcluster: cluster started in %s (kubeconfig %s)\n", time.Since(start).Round(time.Millisecond), c.Kubeconfig())
	*cluster = c
	return m.Run()
}
