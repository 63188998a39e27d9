package libchart

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/helm-canary/helm-canary/renderer"
)

// helm4FilenameAnnotation is what Helm 4 adds to the documents it hands a
// post-renderer; it says where a document came from, not what it is.
const helm4FilenameAnnotation = "postrenderer.helm.sh/postrender-filename"

// objectSet is a manifest as parsed objects, keyed "Kind/name". Parsing drops
// comments (Helm 3's "# Source:" lines), key order, quoting and list indentation;
// numbers compare by value.
type objectSet map[string]map[string]any

func parseObjects(t *testing.T, manifest string) objectSet {
	t.Helper()
	set, err := parseManifest(manifest)
	if err != nil {
		t.Fatalf("%v\n%s", err, manifest)
	}
	return set
}

func parseManifest(manifest string) (objectSet, error) {
	set := objectSet{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return set, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var obj map[string]any
		if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if obj == nil {
			continue // comments only
		}
		meta, _ := obj["metadata"].(map[string]any)
		if annotations, ok := meta["annotations"].(map[string]any); ok {
			delete(annotations, helm4FilenameAnnotation)
			// The renderer records the stage it rendered on the canary Deployment
			// for releases that keep it nowhere else (pipeline mode); library mode's
			// stage is its values (seed 001's weights and replicas), stored with the
			// release.
			delete(annotations, renderer.AnnotationStage)
			delete(annotations, renderer.AnnotationDraining)
			delete(annotations, renderer.AnnotationClusterDomain)
			if len(annotations) == 0 {
				delete(meta, "annotations")
			}
		}
		key := fmt.Sprintf("%v/%v", obj["kind"], meta["name"])
		if _, dup := set[key]; dup {
			return nil, fmt.Errorf("document %d: a second %s", i, key)
		}
		set[key] = obj
	}
}

func (s objectSet) keys() []string {
	var keys []string
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// compareSets fails when the two sets differ: missing or extra objects, or an object
// whose content differs (shown as a diff of its JSON).
func compareSets(t *testing.T, what string, want, got objectSet, wantName, gotName string) {
	t.Helper()
	var problems []string
	for _, k := range want.keys() {
		g, ok := got[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is missing from %s", k, gotName))
			continue
		}
		if !reflect.DeepEqual(want[k], g) {
			problems = append(problems, fmt.Sprintf("%s differs:\n%s", k, jsonDiff(want[k], g, wantName, gotName)))
		}
	}
	for _, k := range got.keys() {
		if _, ok := want[k]; !ok {
			problems = append(problems, fmt.Sprintf("%s has %s, which %s has not", gotName, k, wantName))
		}
	}
	if len(problems) > 0 {
		t.Errorf("%s: %s and %s render different objects:\n%s", what, wantName, gotName, strings.Join(problems, "\n"))
	}
}

func jsonDiff(a, b any, aName, bName string) string {
	ja, _ := json.MarshalIndent(a, "", "  ")
	jb, _ := json.MarshalIndent(b, "", "  ")
	diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(ja)), B: difflib.SplitLines(string(jb)),
		FromFile: aName, ToFile: bName, Context: 3,
	})
	return diff
}

// render runs `helm-canary render args...` over a manifest, as a post-renderer;
// production, when not empty, is passed as --production-from.
func render(t *testing.T, in, production string, args ...string) string {
	t.Helper()
	if production != "" {
		file := filepath.Join(t.TempDir(), "production.yaml")
		if err := os.WriteFile(file, []byte(production), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--production-from", file)
	}
	// The release namespace the library charts are templated in (renderArgs).
	cmd := exec.Command(canaryBinary, append([]string{"render", "--namespace", "shop"}, args...)...)
	cmd.Stdin = strings.NewReader(in)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm-canary render %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}
