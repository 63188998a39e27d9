package libchart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestLint: helm lint --strict says nothing at all (no error, warning or info) about
// the library chart, nor about the example in plain mode and in library mode, with
// and without the optional objects.
func TestLint(t *testing.T) {
	cases := []struct {
		name, chart string
		sets        []string
	}{
		{"canary-lib", libraryChart, nil},
		{"productpage plain", exampleChart, nil},
		{"productpage plain autoscaling gateway", exampleChart, []string{"autoscaling.enabled=true,gateway.enabled=true"}},
		{"productpage library", exampleChart, []string{"canaryLib.enabled=true"}},
		{"productpage library at 10", exampleChart, []string{at10.seedSets(productpageImage, productpageImage)}},
		{"productpage library autoscaling gateway", exampleChart, []string{at10.seedSets(productpageImage, productpageImage), "autoscaling.enabled=true,gateway.enabled=true"}},
		{"productpage plain with routing settings", exampleChart, []string{routingSets}},
		{"productpage library routing at 10", exampleChart, []string{at10.seedSets(productpageImage, productpageImage), routingSets}},
		{"productpage library routing on ASM at 10", exampleChart, []string{at10.seedSets(productpageImage, productpageImage), routingSets, "canary.mesh=asm"}},
	}
	for _, tl := range tools(t) {
		for _, c := range cases {
			t.Run(tl.name+"/"+c.name, func(t *testing.T) {
				if out, err := tl.lint(t, c.chart, c.sets...); err != nil {
					t.Errorf("%v\n%s", err, out)
				}
			})
		}
	}
}

// TestSchemaRejectsBadValues: values.schema.json turns a bad value into a failed helm
// template and helm lint that names the value, in either mode.
func TestSchemaRejectsBadValues(t *testing.T) {
	cases := []struct {
		name string
		set  string
		want []string // all in the error
	}{
		{"weight 150", "productionDeployment.weight=150", []string{"/productionDeployment/weight", "maximum", "150", "100"}},
		{"negative weight", "canaryDeployment.weight=-5", []string{"/canaryDeployment/weight", "minimum"}},
		{"negative replicas", "canaryDeployment.replicaCount=-1", []string{"/canaryDeployment/replicaCount", "minimum", "-1"}},
		{"misspelt productionDeployment key", "productionDeployment.replicas=2", []string{"/productionDeployment", "'replicas' not allowed"}},
		{"misspelt canaryDeployment key", "canaryDeployment.wieght=10", []string{"/canaryDeployment", "'wieght' not allowed"}},
		{"misspelt image key", "canaryDeployment.image.tga=84", []string{"/canaryDeployment/image", "'tga' not allowed"}},
		{"misspelt canaryLib key", "canaryLib.enable=true", []string{"/canaryLib", "'enable' not allowed"}},
		{"bad pull policy", "productionDeployment.image.pullPolicy=Sometimes", []string{"/productionDeployment/image/pullPolicy", "IfNotPresent"}},
		{"weight not a number", "productionDeployment.weight=ninety", []string{"/productionDeployment/weight", "integer"}},
		{"sticky without a cookie", "canary.workloads.productpage.sticky.maxAge=60", []string{"/canary/workloads/productpage/sticky", "missing property 'cookie'"}},
		{"userPercent without a header", "canary.workloads.productpage.userPercent.tagHeader=x-side", []string{"/canary/workloads/productpage/userPercent", "missing property 'header'"}},
		{"mirror above 100", "canary.workloads.productpage.mirror.percent=150", []string{"/canary/workloads/productpage/mirror/percent", "maximum", "150"}},
		{"misspelt routing key", "canary.workloads.productpage.mtach[0].uri.prefix=/", []string{"/canary/workloads/productpage", "'mtach' not allowed"}},
		{"bad mesh", "canary.mesh=linkerd", []string{"/canary/mesh", "istio", "asm"}},
	}
	for _, tl := range tools(t) {
		for _, c := range cases {
			for _, mode := range []string{"canaryLib.enabled=true", "canaryLib.enabled=false"} {
				t.Run(tl.name+"/"+c.name+"/"+mode, func(t *testing.T) {
					sets := []string{mode, c.set}
					_, err := tl.template(t, exampleChart, renderArgs{sets: sets})
					wantError(t, "template", err, c.want)
					out, err := tl.lint(t, exampleChart, sets...)
					if err != nil {
						err = &lintError{err, out}
					}
					wantError(t, "lint", err, c.want)
				})
			}
		}
	}
}

// TestLibraryRejectsInconsistentValues: what a schema cannot say, canary-lib checks
// while rendering, naming the chart's values.
func TestLibraryRejectsInconsistentValues(t *testing.T) {
	cases := []struct {
		name string
		set  string
		want []string
	}{
		{"weights not adding up", "productionDeployment.weight=90,canaryDeployment.weight=20,canaryDeployment.replicaCount=2",
			[]string{"productionDeployment.weight (90)", "canaryDeployment.weight (20)", "must add up to 100"}},
		{"traffic to a canary without pods", "productionDeployment.weight=90,canaryDeployment.weight=10,canaryDeployment.replicaCount=0",
			[]string{"canaryDeployment.weight is 10", "canaryDeployment.replicaCount is 0"}},
		{"traffic to a production without pods", "productionDeployment.replicaCount=0",
			[]string{"productionDeployment.weight is 100", "productionDeployment.replicaCount is 0"}},
		{"adopting with a canary", "canaryLib.adopting=true,productionDeployment.weight=90,canaryDeployment.weight=10,canaryDeployment.replicaCount=2",
			[]string{"adopting", "canary must be at weight 0 and 0 replicas"}},
		{"no image", "image.repository=", []string{"/image/repository"}},
		{"draining with canary traffic", "canary.draining=true,productionDeployment.weight=90,canaryDeployment.weight=10,canaryDeployment.replicaCount=2",
			[]string{"draining is final's first step", "canaryDeployment.weight is 10"}},
	}
	for _, tl := range tools(t) {
		for _, c := range cases {
			t.Run(tl.name+"/"+c.name, func(t *testing.T) {
				_, err := tl.template(t, exampleChart, renderArgs{sets: []string{"canaryLib.enabled=true", c.set}})
				wantError(t, "template", err, c.want)
			})
		}
	}
}

// routingSets is every routing setting, as --set pairs of the canary: block.
const routingSets = "canary.workloads.productpage.match[0].headers.end-user.exact=jason," +
	"canary.workloads.productpage.sticky.cookie=canary-v,canary.workloads.productpage.sticky.maxAge=3600," +
	"canary.workloads.productpage.userPercent.header=x-user-id,canary.workloads.productpage.mirror.percent=5"

type lintError struct {
	err error
	out string
}

func (e *lintError) Error() string { return e.err.Error() + "\n" + e.out }

func wantError(t *testing.T, what string, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded, want an error mentioning %q", what, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s error does not mention %q:\n%v", what, w, err)
		}
	}
}

// TestVendoredLibraryIsCurrent: examples/productpage/charts/canary-lib-0.1.0.tgz,
// which helm dependency update vendored, holds exactly charts/canary-lib. After
// editing the library run `helm dependency update examples/productpage`.
func TestVendoredLibraryIsCurrent(t *testing.T) {
	tgz, err := os.Open(repo("examples", "productpage", "charts", "canary-lib-0.1.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	defer tgz.Close()
	gz, err := gzip.NewReader(tgz)
	if err != nil {
		t.Fatal(err)
	}
	vendored := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		vendored[strings.TrimPrefix(h.Name, "canary-lib/")] = data
	}
	source := map[string][]byte{}
	err = filepath.WalkDir(libraryChart, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(libraryChart, path)
		source[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for name, data := range source {
		v, ok := vendored[name]
		if ok && name == "Chart.yaml" {
			// helm package re-encodes Chart.yaml: compare what it says.
			var a, b map[string]any
			if yaml.Unmarshal(v, &a) == nil && yaml.Unmarshal(data, &b) == nil && reflect.DeepEqual(a, b) {
				continue
			}
		}
		if !ok || !bytes.Equal(v, data) {
			stale = append(stale, name)
		}
	}
	for name := range vendored {
		if _, ok := source[name]; !ok {
			stale = append(stale, name+" (gone from charts/canary-lib)")
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("examples/productpage/charts/canary-lib-0.1.0.tgz is stale (%s): run helm dependency update examples/productpage", strings.Join(stale, ", "))
	}
}

// TestPlainModeUnchanged: with canaryLib off the example renders exactly the bytes
// the renderer's golden inputs were captured from (test/golden/inputs, checked
// through the SDK by test/golden's TestInputsMatchCharts), through the helm 3 CLI too.
func TestPlainModeUnchanged(t *testing.T) {
	for _, tag := range []string{"83", "84"} {
		want, err := os.ReadFile(repo("test", "golden", "inputs", "productpage-"+tag+".helm3.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		// What hack/capture-inputs.sh captures is the post-renderer's input, which is
		// helm template's output.
		got := helmCLI(t, 3).mustTemplate(t, exampleChart, renderArgs{sets: []string{"image.tag=" + tag}})
		if got != string(want) {
			t.Errorf("plain mode with image.tag=%s no longer renders test/golden/inputs/productpage-%s.helm3.yaml byte for byte", tag, tag)
		}
	}
}
