package release

import (
	"context"
	"net"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/cli"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// closedURL is the URL of a port nothing listens on: a Prometheus that is
// unreachable, so that Rollout stops before anything moves and its message names
// the Prometheus it tried.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// pausedRollout stores release pp paused at step 2 of 10,pause,50,100 (stage 10),
// with the settings its command line gave when it started.
func pausedRollout(t *testing.T, settings string) *Client {
	t.Helper()
	store := storage.Init(driver.NewMemory())
	progress := map[string]any{"status": "paused", "steps": "10,pause,50,100", "step": 2, "settings": settings}
	for i, cfg := range []map[string]any{
		{ValuesKey: map[string]any{"stage": "stable"}},
		{ValuesKey: map[string]any{"stage": "10", "rollout": progress}},
	} {
		status := helmrelease.StatusSuperseded
		if i == 1 {
			status = helmrelease.StatusDeployed
		}
		rel := &helmrelease.Release{Name: "pp", Namespace: "default", Version: i + 1, Chart: plainChart(), Config: cfg,
			Info: &helmrelease.Info{Status: status}}
		if err := store.Create(rel); err != nil {
			t.Fatal(err)
		}
	}
	var log strings.Builder
	return &Client{Settings: cli.New(), Namespace: "default", cfg: &action.Configuration{Releases: store}, Log: &log}
}

// --resume goes on with the Prometheus, interval and token files the rollout was
// started with on the command line; flags given to --resume go over them.
func TestResumeUsesTheStartedSettings(t *testing.T) {
	started := closedURL(t)
	c := pausedRollout(t, `{"interval":"7s","prometheus":{"url":"`+started+`","service":""}}`)
	r, err := c.Rollout(context.Background(), RolloutOptions{Release: "pp", Resume: true})
	if err != nil {
		t.Fatalf("--resume without flags: %v", err)
	}
	if r.Outcome != Held || !strings.Contains(r.Message, strings.TrimPrefix(started, "http://")) {
		t.Errorf("--resume without flags: %s: %s; want held at the stored Prometheus %s", r.Outcome, r.Message, started)
	}

	given := closedURL(t)
	r, err = c.Rollout(context.Background(), RolloutOptions{Release: "pp", Resume: true, Prometheus: given})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Message, strings.TrimPrefix(given, "http://")) || strings.Contains(r.Message, strings.TrimPrefix(started, "http://")) {
		t.Errorf("--resume --prometheus %s: %s; want the flag over the stored %s", given, r.Message, started)
	}

	// A rollout started before the settings were stored: as before, flags or values.
	c = pausedRollout(t, "")
	if _, err := c.Rollout(context.Background(), RolloutOptions{Release: "pp", Resume: true}); err == nil || !strings.Contains(err.Error(), "no Prometheus to query") {
		t.Errorf("nothing stored and no flag: %v", err)
	}
}

// What a rollout stores: --analysis FILE and the flags, without the steps (kept
// on their own), each flag over the file.
func TestRolloutStoresItsCommandLine(t *testing.T) {
	r := &rollout{o: RolloutOptions{Steps: "10,100", Interval: 3_000_000_000, PrometheusService: "monitoring/prometheus:9090",
		BearerTokenFile: "/token", CAFile: "/ca.crt"}}
	layer, err := r.commandLine()
	if err != nil {
		t.Fatal(err)
	}
	got, err := storedSettings(layer)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"interval":"3s","prometheus":{"bearerTokenFile":"/token","caFile":"/ca.crt","service":"monitoring/prometheus:9090","url":""}}`
	if got != want {
		t.Errorf("stored %s\nwant   %s", got, want)
	}
	back, err := progress{Settings: got}.settings()
	if err != nil {
		t.Fatal(err)
	}
	over := (&rollout{o: RolloutOptions{Prometheus: "http://prom:9090"}})
	flags, _ := over.commandLine()
	merged, err := storedSettings(mergeValues(back, flags))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(merged, `"url":"http://prom:9090"`) || !strings.Contains(merged, `"service":""`) || !strings.Contains(merged, `"interval":"3s"`) {
		t.Errorf("--resume --prometheus over the stored settings: %s", merged)
	}
	if got := overriding(over.o); !strings.Contains(got, "--prometheus given now") {
		t.Errorf("the output does not say which flags override: %q", got)
	}
}
