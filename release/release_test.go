package release

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

func TestMergeValuesNewestWins(t *testing.T) {
	base := map[string]any{"image": map[string]any{"repository": "r", "tag": "83"}, "replicaCount": 2, "canary": map[string]any{"stage": "10"}}
	got := mergeValues(withoutCanary(base), map[string]any{"image": map[string]any{"tag": "84"}})
	img := got["image"].(map[string]any)
	if img["tag"] != "84" || img["repository"] != "r" || got["replicaCount"] != 2 {
		t.Errorf("merged = %v", got)
	}
	if _, ok := got["canary"]; ok {
		t.Error("the old canary block leaked into the new values")
	}
	if base["image"].(map[string]any)["tag"] != "83" {
		t.Error("merge changed the release's stored values")
	}
}

func TestCanaryBlockRoundTrip(t *testing.T) {
	n := int32(1)
	c := renderer.Config{Stage: "final", Draining: true, CanaryReplicas: &n, Workloads: map[string]renderer.Workload{"cart": {}}}
	vals, err := withCanary(map[string]any{"a": 1}, c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := canaryConfig(vals)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stateOf(back)
	if err != nil || st.Stage.String() != "final" || !st.Draining || *back.CanaryReplicas != 1 || len(back.Workloads) != 1 {
		t.Errorf("round trip = %+v, %+v, %v", back, st, err)
	}
	if _, err := canaryConfig(map[string]any{"canary": map[string]any{"enabled": true}}); err == nil || !strings.Contains(err.Error(), "another chart value") {
		t.Errorf("a chart's own canary: value is not reported: %v", err)
	}
	if st, _ := stateOf(renderer.Config{}); st.Stage.String() != "stable" {
		t.Errorf("a release without a canary block is at %s, want stable", st.Stage)
	}
}

func TestDiffManifests(t *testing.T) {
	before, _ := os.ReadFile("../test/golden/productpage-stable/expected.yaml")
	after, _ := os.ReadFile("../test/golden/productpage-10/expected.yaml")
	d := diffManifests(string(before), string(after), "stage 10")
	for _, want := range []string{"=== stage 10", "~~~ Deployment /productpage-canary", "-  replicas: 0", "+  replicas: 2", "+        subset: canary"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "~~~ Service /product-page-svc") {
		t.Errorf("unchanged Service shows in the diff:\n%s", d)
	}
	if got := diffManifests(string(after), string(after), "same"); !strings.Contains(got, "no changes") {
		t.Errorf("identical manifests: %s", got)
	}
}

// Pipeline mode with a release that is not there (a typo in --release, or a
// post-renderer that never got --namespace): only stable may render, since every
// other stage would run the new pod template as production.
func TestPipelineProductionRefusesAMissingRelease(t *testing.T) {
	store := storage.Init(driver.NewMemory())
	c := &Client{Namespace: "shop", cfg: &action.Configuration{Releases: store}}
	stage := func(s string) stages.Stage {
		st, err := stages.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, opts := range []renderer.Options{
		{Stage: stage("10")},
		{Stage: stage("final")},
		{Stage: stage("swap")},
		{PerWorkload: map[string]renderer.WorkloadOptions{"cart": {Stage: stage("90")}}},
	} {
		m, err := c.PipelineProduction("shpo", opts)
		if err == nil {
			t.Errorf("stage %v (per workload %v): a missing release pinned nothing and rendered %q, want a refusal", opts.Stage, opts.PerWorkload, m)
			continue
		}
		for _, want := range []string{`"shpo"`, `namespace "shop"`, "--namespace", "--stage=stable"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal does not say %s: %v", want, err)
			}
		}
	}
	// A first install renders at stable: nothing to pin, nothing refused.
	if m, err := c.PipelineProduction("shop", renderer.Options{}); err != nil || m != nil {
		t.Errorf("stable with no release yet: %q, %v; want no manifest and no error", m, err)
	}
	// A release that is there pins production at any stage.
	rel := &helmrelease.Release{Name: "shop", Namespace: "shop", Version: 1, Manifest: "kind: Deployment\n",
		Info: &helmrelease.Info{Status: helmrelease.StatusDeployed}}
	if err := store.Create(rel); err != nil {
		t.Fatal(err)
	}
	if m, err := c.PipelineProduction("shop", renderer.Options{Stage: stage("10")}); err != nil || string(m) != rel.Manifest {
		t.Errorf("stage 10 with the release deployed: %q, %v; want its manifest", m, err)
	}
}

// No Secret value reaches a diff, old or new, in data or stringData; which keys
// changed still shows.
func TestDiffRedactsSecrets(t *testing.T) {
	secret := func(password, token string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: " + password + ", user: YWRtaW4=}\nstringData: {token: " + token + "}\n"
	}
	old, new := secret("b2xkLXNlY3JldA==", "old-token-value"), secret("bmV3LXNlY3JldA==", "new-token-value")
	for _, tc := range []struct{ name, old, new string }{{"changed", old, new}, {"new", "", new}, {"removed", old, ""}} {
		d := diffManifests(tc.old, tc.new, "stage 10")
		for _, value := range []string{"b2xkLXNlY3JldA==", "bmV3LXNlY3JldA==", "YWRtaW4=", "old-token-value", "new-token-value"} {
			if strings.Contains(d, value) {
				t.Errorf("%s: the diff prints the Secret value %s:\n%s", tc.name, value, d)
			}
		}
		if !strings.Contains(d, "Secret /db") {
			t.Errorf("%s: the diff does not show the Secret:\n%s", tc.name, d)
		}
	}
	d := diffManifests(old, new, "stage 10")
	if !strings.Contains(d, "+  password: "+redactedChanged) || !strings.Contains(d, "+  token: "+redactedChanged) || strings.Contains(d, "user: "+redactedChanged) {
		t.Errorf("the diff does not say which Secret keys changed:\n%s", d)
	}
}

// A live object cut to the manifest's shape: what the API server adds goes, what
// the manifest sets stays with its live value, list items added by hand stay.
// A live Secret has no stringData (the API server folded it into data): its
// values are read back from data, so an unchanged stringData is no change and a
// changed one is.
func TestLiveSecretStringData(t *testing.T) {
	manifest := map[string]any{"kind": "Secret", "data": map[string]any{"user": "YQ=="}, "stringData": map[string]any{"dsn": "pg://a", "token": "t2"}}
	live := map[string]any{"kind": "Secret", "data": map[string]any{"user": "YQ==", "dsn": "cGc6Ly9h", "token": "dDE="}}
	fields := project(live, manifest).(map[string]any)
	liveStringData(fields, live, manifest)
	got := fmt.Sprint(fields)
	want := "map[data:map[user:YQ==] kind:Secret stringData:map[dsn:pg://a token:t1]]"
	if got != want {
		t.Errorf("live Secret =\n%s\nwant\n%s", got, want)
	}
}

func TestProjectLiveOntoManifest(t *testing.T) {
	manifest := map[string]any{"metadata": map[string]any{"name": "a"}, "spec": map[string]any{
		"replicas": float64(2), "containers": []any{map[string]any{"name": "c", "image": "x:1"}}}}
	live := map[string]any{"metadata": map[string]any{"name": "a", "uid": "u", "resourceVersion": "7"}, "status": map[string]any{"ready": 1},
		"spec": map[string]any{"replicas": int64(5), "strategy": "RollingUpdate", "containers": []any{
			map[string]any{"name": "c", "image": "x:1", "terminationMessagePath": "/dev/termination-log"},
			map[string]any{"name": "debug", "image": "busybox"}}}}
	got := fmt.Sprint(project(live, manifest))
	want := "map[metadata:map[name:a] spec:map[containers:[map[image:x:1 name:c] map[image:busybox name:debug]] replicas:5]]"
	if got != want {
		t.Errorf("project =\n%s\nwant\n%s", got, want)
	}
}
