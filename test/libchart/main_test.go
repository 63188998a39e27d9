package libchart

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/helm-canary/helm-canary/internal/localcluster"
)

var (
	cluster *localcluster.Cluster
	// canaryBinary is helm-canary built for this run: the post-renderer path.
	canaryBinary string
	// scratch holds the run's files (the binary, Helm homes); removed at the end.
	scratch string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	scratch, err = os.MkdirTemp("", "helm-canary-libchart-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "libchart:", err)
		return 1
	}
	defer os.RemoveAll(scratch)
	canaryBinary = filepath.Join(scratch, "helm-canary")
	build := exec.Command("go", "build", "-o", canaryBinary, "github.com/helm-canary/helm-canary/cmd/helm-canary")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "libchart: building helm-canary:", err)
		return 1
	}
	// "all": the API server and helm3/helm4 (cached by hack/testbin.sh). With -short
	// nothing is started and only the Helm SDK renders.
	return localcluster.RunTests(m, localcluster.Options{Build: "all"}, &cluster)
}

// repo is the module root; the tests run in test/libchart.
func repo(parts ...string) string {
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

var (
	exampleChart = repo("examples", "productpage")
	libraryChart = repo("charts", "canary-lib")
)
