package istiocheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/helm-canary/helm-canary/internal/localcluster"
)

// Message is one finding of Istio's checks.
type Message struct {
	Level   string `json:"level"`  // Error, Warning or Info
	Origin  string `json:"origin"` // "validation" (istiod's webhook) or "analyze" (istioctl analyze)
	Code    string `json:"code"`   // the analyzer's code (IST0101...); empty for validation
	Object  string `json:"object"` // the object it is about
	Message string `json:"message"`
}

func (m Message) String() string {
	return fmt.Sprintf("%s (%s) %s: %s", m.Level, m.Origin, m.Object, m.Message)
}

// Allowance is a finding we accept, with the reason.
type Allowance struct {
	Code     string // the analyzer's code
	Contains string // and a part of the message, so that the code's other findings still count
	Why      string
}

// Allowed lists the analyzer findings that say more about the test setting than
// about the objects: without it every manifest would "fail" on them. Anything not
// listed here, at Warning or Error, is a problem.
var Allowed = []Allowance{
	{"IST0101", "Referenced gateway not found", "a Gateway outside the release (a user's, or the mesh's " +
		"ingress gateway): the checks see one release's objects, not the mesh"},
}

func allowed(m Message) bool {
	for _, a := range Allowed {
		if m.Code != "" && m.Code == a.Code && strings.Contains(m.Message, a.Contains) {
			return true
		}
	}
	return false
}

var binary struct {
	once sync.Once
	path string
	err  error
}

// Binary builds (once per machine, cached) and returns the istio-check binary.
func Binary(ctx context.Context) (string, error) {
	binary.once.Do(func() {
		dir, err := localcluster.Binaries(ctx, "istio")
		binary.path, binary.err = filepath.Join(dir, "istio-check"), err
	})
	return binary.path, binary.err
}

// Run runs Istio's validation and analyzers over a multi-document YAML manifest;
// objects without a namespace are taken to be in namespace. It returns every
// finding, Info included.
func Run(ctx context.Context, manifest []byte, namespace string) ([]Message, error) {
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--namespace", namespace)
	cmd.Stdin = bytes.NewReader(manifest)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("istio-check: %w\n%s", err, stderr.String())
	}
	var out struct {
		Messages []Message `json:"messages"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("istio-check output: %w\n%s", err, stdout.String())
	}
	return out.Messages, nil
}

// Problems is Run without Info findings and without the Allowed ones.
func Problems(ctx context.Context, manifest []byte, namespace string) ([]Message, error) {
	all, err := Run(ctx, manifest, namespace)
	if err != nil {
		return nil, err
	}
	var problems []Message
	for _, m := range all {
		if m.Level != "Info" && !allowed(m) {
			problems = append(problems, m)
		}
	}
	return problems, nil
}

// Require fails t when Istio's checks find a problem in manifest; what names the
// manifest in the failure.
func Require(t testing.TB, what string, manifest []byte, namespace string) {
	t.Helper()
	problems, err := Problems(t.Context(), manifest, namespace)
	if err != nil {
		t.Fatalf("Istio's checks on %s: %v", what, err)
	}
	if len(problems) > 0 {
		var lines []string
		for _, p := range problems {
			lines = append(lines, "  "+p.String())
		}
		t.Errorf("Istio's validation and analyzers find problems in %s:\n%s", what, strings.Join(lines, "\n"))
	}
}
