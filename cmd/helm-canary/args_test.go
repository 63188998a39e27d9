package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// apiServer is an API server that counts requests and, if hang, never answers.
func apiServer(t *testing.T, hang bool) *atomic.Int32 {
	t.Helper()
	var requests atomic.Int32
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if hang {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
			return
		}
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]
current-context: c
`, srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	t.Setenv("HELM_KUBECONTEXT", "")
	t.Setenv("HELM_NAMESPACE", "")
	return &requests
}

func run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := newRootCmd(strings.NewReader(""), &out, &errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return errOut.String(), err
}

// Bad arguments are usage errors (exit 2) with a message that says what is wrong,
// found before the cluster is reached.
func TestArgumentsCheckedBeforeTheCluster(t *testing.T) {
	requests := apiServer(t, false)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"stage", "-1", "pp"}, `stage "-1": canary weight must be between 0 and 100`},
		{[]string{"stage", "-25", "pp", "./chart"}, `stage "-25": canary weight must be between 0 and 100`},
		{[]string{"stage", "99999999999999999999", "pp"}, "canary weight must be between 0 and 100"},
		{[]string{"stage", "101", "pp"}, "canary weight must be between 0 and 100"},
		{[]string{"stage", "halfway", "pp"}, `unknown stage "halfway"`},
		{[]string{"stage", "final", "pp", "--drain-time", "-5s"}, "--drain-time -5s: must be 0 or more"},
		{[]string{"stage", "10", "pp", "--timeout", "-1s"}, "--timeout -1s: must be 0 or more"},
		{[]string{"rollback", "pp", "--timeout", "-1s"}, "--timeout -1s: must be 0 or more"},
		{[]string{"rollback"}, "want RELEASE [CHART]"},
		{[]string{"rollout"}, "want RELEASE [CHART]"},
		{[]string{"rollout", "pp", "--steps", "10,50"}, "the last weight must be 100"},
		{[]string{"rollout", "pp", "--steps", "pause,100"}, "the first step must be a weight"},
		{[]string{"rollout", "pp", "--prometheus-service", "prometheus:9090"}, "want NAMESPACE/NAME:PORT"},
		{[]string{"rollout", "pp", "--interval", "-1m"}, "--interval -1m0s: must be 0 or more"},
		{[]string{"rollout", "pp", "-o", "yaml"}, "-o yaml: use table or json"},
		{[]string{"route", "--host", "reviews", "--users", "-3", "--user-header", "x-user"}, "--users -3: must be 0 or more"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := run(tt.args...)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T), want a usage error (exit 2)", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the API server got %d requests for commands refused on their arguments", n)
	}
}

// An API server that never answers does not hold a command past its --timeout.
func TestHangingAPIServerBoundedByTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a timeout")
	}
	requests := apiServer(t, true)
	for _, args := range [][]string{{"stage", "10", "pp", "--timeout", "2s"}, {"rollback", "pp", "--timeout", "2s"}} {
		start := time.Now()
		done := make(chan error, 1)
		go func() { _, err := run(args...); done <- err }()
		select {
		case err := <-done:
			took := time.Since(start)
			if err == nil {
				t.Fatalf("%v: no error from a server that never answers", args)
			}
			if took > 8*time.Second {
				t.Errorf("%v: returned after %s with --timeout 2s", args, took.Round(time.Millisecond))
			}
			t.Logf("%v: %s after %s", args, err, took.Round(time.Millisecond))
		case <-time.After(40 * time.Second):
			t.Fatalf("%v: still running after 40s with --timeout 2s", args)
		}
	}
	if requests.Load() == 0 {
		t.Error("the command never reached the API server")
	}
}
