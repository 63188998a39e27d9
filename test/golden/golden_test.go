package golden

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/internal/istiocheck"
	"github.com/helm-canary/helm-canary/internal/localcluster"
	"github.com/helm-canary/helm-canary/internal/luacheck"
)

var update = flag.Bool("update", false, "rewrite expected files from the current output (review the diff!)")

var (
	cluster *localcluster.Cluster
	binary  string // bin/helm-canary built for this test run
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "helm-canary-golden-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "helm-canary")
	build := exec.Command("go", "build", "-o", binary, "github.com/helm-canary/helm-canary/cmd/helm-canary")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building helm-canary:", err)
		return 1
	}
	// The API server's judgement is all these tests ask for: no pods.
	return localcluster.RunTests(m, localcluster.Options{APIOnly: true}, &cluster)
}

// goldenCase is one case.yaml.
type goldenCase struct {
	Description string   `yaml:"description"`
	Stdin       string   `yaml:"stdin"`
	Args        []string `yaml:"args"`
}

type result struct {
	stdout, stderr []byte
	err            error
}

func cases(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob("*/case.yaml")
	if err != nil || len(matches) == 0 {
		t.Fatalf("no golden cases found: %v", err)
	}
	var dirs []string
	for _, m := range matches {
		dirs = append(dirs, filepath.Dir(m))
	}
	sort.Strings(dirs)
	return dirs
}

func loadCase(t *testing.T, dir string) goldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "case.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCase
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s/case.yaml: %v", dir, err)
	}
	if c.Description == "" || c.Stdin == "" {
		t.Fatalf("%s/case.yaml needs a description and a stdin file", dir)
	}
	return c
}

// runCase runs the binary the way a user or Helm does: stdin in, stdout out.
func runCase(t *testing.T, dir string, c goldenCase) result {
	t.Helper()
	in, err := os.ReadFile(filepath.Join(dir, c.Stdin))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"render"}, c.Args...)...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return result{stdout.Bytes(), stderr.Bytes(), err}
}

func TestGolden(t *testing.T) {
	for _, dir := range cases(t) {
		t.Run(dir, func(t *testing.T) {
			c := loadCase(t, dir)
			res := runCase(t, dir, c)
			errFile := filepath.Join(dir, "error.txt")
			if want, err := os.ReadFile(errFile); err == nil {
				if res.err == nil {
					t.Fatalf("%s: render succeeded, want an error", c.Description)
				}
				if len(res.stdout) != 0 {
					t.Errorf("failed render wrote %d bytes to stdout, want none", len(res.stdout))
				}
				for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
					if !strings.Contains(string(res.stderr), line) {
						t.Errorf("error output %q lacks %q", res.stderr, line)
					}
				}
				return
			}
			if res.err != nil {
				t.Fatalf("%s: %v\n%s", c.Description, res.err, res.stderr)
			}
			compare(t, filepath.Join(dir, "expected.yaml"), res.stdout)
			warnings := filepath.Join(dir, "warnings.txt")
			if len(res.stderr) > 0 || fileExists(warnings) {
				compare(t, warnings, res.stderr)
			}
		})
	}
}

// TestGoldenIdempotent feeds every expected output back in with the same arguments,
// as `helm get manifest R | helm-canary render ...` does: an already canaried stream
// renders to itself, byte for byte (no second canary, no doubled routes).
func TestGoldenIdempotent(t *testing.T) {
	for _, dir := range cases(t) {
		if !fileExists(filepath.Join(dir, "expected.yaml")) {
			continue
		}
		t.Run(dir, func(t *testing.T) {
			c := loadCase(t, dir)
			if slices.Contains(c.Args, "mesh") && slices.Contains(c.Args, "--part") {
				// Routing objects alone have no Deployments to canary: a mesh part
				// is rendered from the chart's stream, never from itself.
				t.Skip("a mesh part is not a render input")
			}
			c.Stdin = "expected.yaml"
			res := runCase(t, dir, c)
			if res.err != nil {
				t.Fatalf("rendering %s/expected.yaml again: %v\n%s", dir, res.err, res.stderr)
			}
			want, _ := os.ReadFile(filepath.Join(dir, "expected.yaml"))
			if !bytes.Equal(res.stdout, want) {
				t.Errorf("render(expected.yaml) differs from expected.yaml:\n%s", lineDiff(string(want), string(res.stdout)))
			}
		})
	}
}

func compare(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it, then review it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output:\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first differing lines; enough to see what moved.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want: %q\n  got:  %q", i+1, wl, gl)
		}
	}
	return "(same lines, different bytes)"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// namedNamespace finds the namespaces a manifest's objects name in metadata.
var namedNamespace = regexp.MustCompile(`(?m)^  namespace: "?([a-z0-9][a-z0-9-]*)"?\r?$`)

// TestGoldenOutputsAreValid applies every expected output to the API server with
// Istio's CRDs (server-side dry run, strict field validation) and runs Istio's own
// validation and analyzers over it (internal/istiocheck). A golden file that
// Kubernetes or Istio would reject, or that istioctl analyze warns about, is a bug,
// however it reads.
func TestGoldenOutputsAreValid(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local API server")
	}
	ctx := context.Background()
	// User-percentage filters live in the ingress gateway's namespace.
	if err := cluster.CreateNamespace(ctx, "istio-system"); err != nil {
		t.Fatal(err)
	}
	for _, dir := range cases(t) {
		manifest, err := os.ReadFile(filepath.Join(dir, "expected.yaml"))
		if err != nil {
			continue // an error case
		}
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			ns := "golden-" + strings.Trim(nonName.ReplaceAllString(strings.ToLower(dir), "-"), "-")
			if len(ns) > 63 {
				ns = ns[:63]
			}
			if err := cluster.CreateNamespace(ctx, ns); err != nil {
				t.Fatal(err)
			}
			// Some cases render with --namespace, so their objects name it; a dry
			// run into a namespace that does not exist fails for that reason alone.
			for _, m := range namedNamespace.FindAllSubmatch(manifest, -1) {
				if err := cluster.CreateNamespace(ctx, string(m[1])); err != nil {
					t.Fatal(err)
				}
			}
			if err := cluster.DryRunApply(ctx, ns, manifest); err != nil {
				t.Errorf("the API server rejects %s/expected.yaml:\n%v", dir, err)
			}
			// Istio resolves a short host in the namespace of the object that names
			// it: the one the case renders for (--namespace), where it names one.
			istioNS := caseFlag(t, dir, "--namespace", ns)
			istiocheck.RequireInDomain(t, dir+"/expected.yaml", manifest, istioNS, caseFlag(t, dir, "--cluster-domain", istiocheck.DefaultDomain))
		})
	}
}

// TestGoldenLuaRuns runs every gateway filter in the expected outputs in LuaJIT
// (Envoy's Lua): each compiles, tags a request by its user header, and removes a
// tag the client sent without one.
func TestGoldenLuaRuns(t *testing.T) {
	filters := 0
	for _, dir := range cases(t) {
		manifest, err := os.ReadFile(filepath.Join(dir, "expected.yaml"))
		if err != nil {
			continue // an error case
		}
		nodes, err := kio.FromBytes(manifest)
		if err != nil {
			t.Fatalf("%s/expected.yaml: %v", dir, err)
		}
		for _, n := range nodes {
			if n.GetKind() != "EnvoyFilter" {
				continue
			}
			code, err := n.GetString("spec.configPatches[0].patch.value.typed_config.inlineCode")
			if err != nil {
				t.Errorf("%s: EnvoyFilter %s has no inline Lua: %v", dir, n.GetName(), err)
				continue
			}
			a := n.GetAnnotations()
			user, tag := strings.ToLower(a["helm-canary.io/user-header"]), strings.ToLower(a["helm-canary.io/tag-header"])
			res, err := luacheck.Run(code, []map[string]string{{user: "jason", tag: "spoofed"}, {tag: "spoofed"}})
			if errors.Is(err, luacheck.ErrNoLuaJIT) && testing.Short() {
				t.Skip(err)
			}
			if err != nil {
				t.Fatalf("%s: EnvoyFilter %s: %v", dir, n.GetName(), err)
			}
			filters++
			if v := res[0].Headers[tag]; v != "canary" && v != "production" {
				t.Errorf("%s: EnvoyFilter %s tagged a user %q in %s", dir, n.GetName(), v, tag)
			}
			if v, ok := res[1].Headers[tag]; ok {
				t.Errorf("%s: EnvoyFilter %s kept a client's tag %q without a user", dir, n.GetName(), v)
			}
		}
	}
	if filters == 0 {
		t.Error("no gateway filter in the golden outputs: the test checks nothing")
	}
}

// caseFlag is the value a case passes with flag (--flag V or --flag=V), or def.
func caseFlag(t *testing.T, dir, flag, def string) string {
	t.Helper()
	args := loadCase(t, dir).Args
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return def
}
