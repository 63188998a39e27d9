package renderer

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// configured is a chart's stream at one version: the cart Deployment reads a
// ConfigMap as a volume and through envFrom, a Secret through env secretKeyRef, a
// static ConfigMap whose data never changes (its version label does), and a
// ConfigMap it shares with a worker Deployment no Service selects.
func configured(version string) string {
	secret := base64.StdEncoding.EncodeToString([]byte("key-" + version))
	return appAt(version) + `        volumeMounts:
        - name: config
          mountPath: /etc/cart
        - name: shared
          mountPath: /etc/shared
        envFrom:
        - configMapRef:
            name: cart-static
        env:
        - name: API_KEY
          valueFrom:
            secretKeyRef:
              name: cart-secret
              key: apiKey
      volumes:
      - name: config
        configMap:
          name: "cart-config"
      - name: shared
        projected:
          sources:
          - configMap:
              name: shared
---
# Source: shop/templates/config.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cart-config
  labels:
    app.kubernetes.io/version: "` + version + `"
data:
  greeting: hello from ` + version + `
---
# Source: shop/templates/config.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cart-static
  labels:
    app.kubernetes.io/version: "` + version + `"
data:
  LOG_LEVEL: info
---
# Source: shop/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: cart-secret
type: Opaque
data:
  apiKey: ` + secret + `
---
# Source: shop/templates/shared.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: shared
data:
  region: eu-` + version + `
---
# Source: shop/templates/worker.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  selector:
    matchLabels:
      app: worker
  template:
    metadata:
      labels:
        app: worker
    spec:
      containers:
      - name: worker
        image: repo/worker:` + version + `
        envFrom:
        - configMapRef:
            name: shared
`
}

// docOf returns the document of kind/name in a stream, as bytes.
func docOf(t *testing.T, stream, kind, name string) string {
	t.Helper()
	for _, d := range splitDocuments([]byte(stream)) {
		n, err := d.parse()
		if err != nil {
			t.Fatal(err)
		}
		if n != nil && n.GetKind() == kind && n.GetName() == name {
			return string(d.body)
		}
	}
	return ""
}

func secretValue(t *testing.T, n *yaml.RNode, key string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(get(t, n, "data."+key))
	if err != nil {
		t.Fatalf("Secret %s data.%s: %v", n.GetName(), key, err)
	}
	return string(b)
}

type configWant struct {
	config, secret, shared string // production's content under the original names
	copies                 bool   // the canary's copies exist, with 2.0
	canaryReadsCopies      bool
}

func checkConfigs(t *testing.T, out string, w configWant) {
	t.Helper()
	wantField(t, find(t, out, "ConfigMap", "cart-config"), "data.greeting", "hello from "+w.config)
	if got := secretValue(t, find(t, out, "Secret", "cart-secret"), "apiKey"); got != "key-"+w.secret {
		t.Errorf("Secret cart-secret apiKey = %q, want key-%s", got, w.secret)
	}
	wantField(t, find(t, out, "ConfigMap", "shared"), "data.region", "eu-"+w.shared)
	copies := 0
	for _, n := range objects(t, out) {
		if n.GetAnnotations()[AnnotationCopyOf] != "" {
			copies++
		}
	}
	if w.copies {
		if copies != 3 {
			t.Errorf("%d copies, want 3 (cart-config, cart-secret, shared)", copies)
		}
		c := find(t, out, "ConfigMap", "cart-config-canary")
		wantField(t, c, "data.greeting", "hello from 2.0")
		wantField(t, c, "metadata.annotations.helm-canary\\.io/copy-of", "cart-config")
		if got := secretValue(t, find(t, out, "Secret", "cart-secret-canary"), "apiKey"); got != "key-2.0" {
			t.Errorf("Secret cart-secret-canary apiKey = %q, want key-2.0", got)
		}
		wantField(t, find(t, out, "ConfigMap", "shared-canary"), "data.region", "eu-2.0")
	} else if copies != 0 {
		t.Errorf("%d copies, want none:\n%s", copies, out)
	}
	suffix := ""
	if w.canaryReadsCopies {
		suffix = CanarySuffix
	}
	canary := find(t, out, "Deployment", "cart-canary")
	wantField(t, canary, "spec.template.spec.volumes[0].configMap.name", "cart-config"+suffix)
	wantField(t, canary, "spec.template.spec.volumes[1].projected.sources[0].configMap.name", "shared"+suffix)
	wantField(t, canary, "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name", "cart-secret"+suffix)
	wantField(t, canary, "spec.template.spec.containers[0].envFrom[0].configMapRef.name", "cart-static")
	production := find(t, out, "Deployment", "cart")
	wantField(t, production, "spec.template.spec.volumes[0].configMap.name", "cart-config")
	wantField(t, production, "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name", "cart-secret")
	wantField(t, find(t, out, "Deployment", "worker"), "spec.template.spec.containers[0].envFrom[0].configMapRef.name", "shared")
}

// The walk of seed 001 with configuration that changes between versions: production
// keeps 1.0's content until swap, the canary reads 2.0's from its copies, and every
// output renders to itself.
func TestConfigIsPartOfTheVersion(t *testing.T) {
	v1, v2 := configured("1.0"), configured("2.0")
	workloads := []string{"cart"}
	stable := render(t, v1, Options{Stage: mustStage(t, "stable"), Workloads: workloads})
	production := stable
	steps := []struct {
		stage    string
		draining bool
		in       string
		want     configWant
	}{
		{"10", false, v2, configWant{"1.0", "1.0", "1.0", true, true}},
		{"90", false, v2, configWant{"1.0", "1.0", "1.0", true, true}},
		{"100", false, v2, configWant{"1.0", "1.0", "1.0", true, true}},
		// Production takes 2.0 under the original names; the canary pods keep
		// reading the copies (same content) rather than restart while they serve.
		{"swap", false, v2, configWant{"2.0", "2.0", "2.0", true, true}},
		{"final", true, v2, configWant{"2.0", "2.0", "2.0", true, true}},
		{"final", false, v2, configWant{"2.0", "2.0", "2.0", false, false}},
	}
	var at10 string
	for _, s := range steps {
		name := s.stage
		if s.draining {
			name += "-draining"
		}
		t.Run(name, func(t *testing.T) {
			opts := Options{Stage: mustStage(t, s.stage), Draining: s.draining, Workloads: workloads, ProductionManifest: []byte(production)}
			res, err := Render([]byte(s.in), opts)
			if err != nil {
				t.Fatal(err)
			}
			out := string(res.Manifest)
			checkConfigs(t, out, s.want)
			// The unchanged config passes through byte for byte, labels and all.
			if got, want := docOf(t, out, "ConfigMap", "cart-static"), docOf(t, s.in, "ConfigMap", "cart-static"); got != want {
				t.Errorf("cart-static changed:\n%s\nwant\n%s", got, want)
			}
			if s.want.config == "1.0" {
				// Production's content is the production manifest's document.
				if got, want := docOf(t, out, "ConfigMap", "cart-config"), docOf(t, production, "ConfigMap", "cart-config"); got != want {
					t.Errorf("cart-config is not production's document:\n%s\nwant\n%s", got, want)
				}
				if !hasWarning(res.Warnings, "ConfigMap shared is read by Deployment worker too") {
					t.Errorf("no warning about the worker reading shared: %q", res.Warnings)
				}
			}
			if again := render(t, out, opts); again != out {
				t.Errorf("render of the output differs:\n%s", lineDiffString(out, again))
			}
			if s.stage == "10" {
				at10 = out
			}
			production = out
		})
	}

	// Rollback from 10 (the chart and values of 1.0 again): no copies, production
	// as it was, canary reads the originals.
	t.Run("stable-from-10", func(t *testing.T) {
		out := render(t, v1, Options{Stage: mustStage(t, "stable"), Workloads: workloads, ProductionManifest: []byte(at10)})
		checkConfigs(t, out, configWant{"1.0", "1.0", "1.0", false, false})
		for _, kind := range []string{"ConfigMap", "Secret"} {
			for _, n := range objects(t, stable) {
				if n.GetKind() == kind {
					if got, want := docOf(t, out, kind, n.GetName()), docOf(t, stable, kind, n.GetName()); got != want {
						t.Errorf("%s %s at stable from 10:\n%s\nwant, as at the first stable:\n%s", kind, n.GetName(), got, want)
					}
				}
			}
		}
	})
	// stable in a pipeline that still renders 2.0: production keeps 1.0's content.
	t.Run("stable-new-chart", func(t *testing.T) {
		out := render(t, v2, Options{Stage: mustStage(t, "stable"), Workloads: workloads, ProductionManifest: []byte(at10)})
		checkConfigs(t, out, configWant{"1.0", "1.0", "1.0", false, false})
	})
}

// A stream rendered at 10 and rendered again without the production manifest (helm
// get manifest piped back in) moves on by itself: the stream holds production's
// content under the original names and the canary's in the copies.
func TestConfigRerenderAtAnotherStage(t *testing.T) {
	workloads := []string{"cart"}
	stable := render(t, configured("1.0"), Options{Workloads: workloads})
	at10 := render(t, configured("2.0"), Options{Stage: mustStage(t, "10"), Workloads: workloads, ProductionManifest: []byte(stable)})
	at90 := render(t, at10, Options{Stage: mustStage(t, "90"), Workloads: workloads})
	checkConfigs(t, at90, configWant{"1.0", "1.0", "1.0", true, true})
	swapped := render(t, at90, Options{Stage: mustStage(t, "swap"), Workloads: workloads})
	checkConfigs(t, swapped, configWant{"2.0", "2.0", "2.0", true, true})
	if again := render(t, swapped, Options{Stage: mustStage(t, "swap"), Workloads: workloads}); again != swapped {
		t.Errorf("swap of a swapped stream differs:\n%s", lineDiffString(swapped, again))
	}
	final := render(t, swapped, Options{Stage: mustStage(t, "final"), Workloads: workloads})
	checkConfigs(t, final, configWant{"2.0", "2.0", "2.0", false, false})
	back := render(t, at90, Options{Stage: mustStage(t, "stable"), Workloads: workloads})
	checkConfigs(t, back, configWant{"1.0", "1.0", "1.0", false, false})
}

// Nothing changed in the config: no copy, every config document byte for byte.
func TestConfigUnchangedPassesThrough(t *testing.T) {
	v1 := configured("1.0")
	v2 := strings.ReplaceAll(v1, "repo/cart:1.0", "repo/cart:2.0")
	stable := render(t, v1, Options{Workloads: []string{"cart"}})
	out := render(t, v2, Options{Stage: mustStage(t, "10"), Workloads: []string{"cart"}, ProductionManifest: []byte(stable)})
	for _, d := range splitDocuments([]byte(v2)) {
		if d.kind == "ConfigMap" || d.kind == "Secret" {
			if !bytes.Contains([]byte(out), d.raw) {
				t.Errorf("%s %s is not passed through byte for byte", d.kind, d.name)
			}
		}
	}
	if strings.Contains(out, AnnotationCopyOf) {
		t.Errorf("a copy of an unchanged config:\n%s", out)
	}
}

// Stage 10 of a chart whose config changes while production's is immutable: the
// canary gets its copy (never immutable) and a warning says swap will be refused;
// swap is refused, naming the object and the fix.
func TestConfigImmutable(t *testing.T) {
	immutableAt := func(v string) string {
		return strings.Replace(configured(v), "data:\n  greeting:", "immutable: true\ndata:\n  greeting:", 1)
	}
	workloads := []string{"cart"}
	stable := render(t, immutableAt("1.0"), Options{Workloads: workloads})
	res, err := Render([]byte(immutableAt("2.0")), Options{Stage: mustStage(t, "10"), Workloads: workloads, ProductionManifest: []byte(stable)})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Manifest)
	wantField(t, find(t, out, "ConfigMap", "cart-config"), "immutable", "true")
	wantField(t, find(t, out, "ConfigMap", "cart-config-canary"), "immutable", "<none>")
	if !hasWarning(res.Warnings, "ConfigMap cart-config is immutable (immutable: true) in production") {
		t.Errorf("no warning: %q", res.Warnings)
	}
	err = renderErr(t, immutableAt("2.0"), Options{Stage: mustStage(t, "swap"), Workloads: workloads, ProductionManifest: []byte(out)})
	for _, want := range []string{"ConfigMap cart-config is immutable", "a name of its own"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// Copies are named NAME-canary; a name too long for that is shortened with a hash,
// within the 253 characters Kubernetes allows, and renders to itself.
func TestConfigCopyNames(t *testing.T) {
	long := strings.Repeat("a", 250)
	if got := configCopyName("cart-config"); got != "cart-config-canary" {
		t.Errorf("copy name %q", got)
	}
	got := configCopyName(long)
	if len(got) > maxObjectName || !strings.HasSuffix(got, CanarySuffix) || got == configCopyName(long+"b") {
		t.Errorf("copy name of a long name: %q (%d characters)", got, len(got))
	}
	v := func(version string) string { return strings.ReplaceAll(configured(version), "cart-config", long) }
	stable := render(t, v("1.0"), Options{Workloads: []string{"cart"}})
	opts := Options{Stage: mustStage(t, "10"), Workloads: []string{"cart"}, ProductionManifest: []byte(stable)}
	out := render(t, v("2.0"), opts)
	wantField(t, find(t, out, "ConfigMap", got), "data.greeting", "hello from 2.0")
	wantField(t, find(t, out, "Deployment", "cart-canary"), "spec.template.spec.volumes[0].configMap.name", got)
	if again := render(t, out, opts); again != out {
		t.Errorf("not idempotent:\n%s", lineDiffString(out, again))
	}
}

// The chart ships an object of the copy's name: refused, naming it.
func TestConfigCopyCollision(t *testing.T) {
	clash := "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cart-config-canary\ndata:\n  x: y\n"
	stable := render(t, configured("1.0")+clash, Options{Workloads: []string{"cart"}})
	err := renderErr(t, configured("2.0")+clash, Options{Stage: mustStage(t, "10"), Workloads: []string{"cart"}, ProductionManifest: []byte(stable)})
	if !strings.Contains(err.Error(), "ConfigMap cart-config-canary") || !strings.Contains(err.Error(), "rename the chart's ConfigMap") {
		t.Errorf("error = %v", err)
	}
	// Twice in the stream: which one would production keep? Refused.
	twice := configured("2.0") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cart-config\ndata:\n  greeting: other\n"
	err = renderErr(t, twice, Options{Stage: mustStage(t, "10"), Workloads: []string{"cart"}, ProductionManifest: []byte(stable)})
	if !strings.Contains(err.Error(), "ConfigMap cart-config (namespace default) is in the stream 2 times") {
		t.Errorf("error = %v", err)
	}
}

// A config the chart makes as a hook is created by Helm at hook time, outside the
// release manifest: it is never pinned nor copied.
func TestConfigHookLeftAlone(t *testing.T) {
	hooked := func(v string) string {
		return strings.Replace(configured(v), "  name: cart-config\n", "  name: cart-config\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\n", 1)
	}
	stable := render(t, hooked("1.0"), Options{Workloads: []string{"cart"}})
	out := render(t, hooked("2.0"), Options{Stage: mustStage(t, "10"), Workloads: []string{"cart"}, ProductionManifest: []byte(stable)})
	wantField(t, find(t, out, "ConfigMap", "cart-config"), "data.greeting", "hello from 2.0")
	wantField(t, find(t, out, "Deployment", "cart-canary"), "spec.template.spec.volumes[0].configMap.name", "cart-config")
}

// A chart version that renames a config (a content hash in its name): production's
// pinned pods still read the old name, so it stays in the release until swap.
func TestConfigRenamedIsKeptForProduction(t *testing.T) {
	hashed := func(v, suffix string) string {
		return strings.ReplaceAll(configured(v), "cart-config", "cart-config-"+suffix)
	}
	stable := render(t, hashed("1.0", "5f2c"), Options{Workloads: []string{"cart"}})
	opts := Options{Stage: mustStage(t, "10"), Workloads: []string{"cart"}, ProductionManifest: []byte(stable)}
	res, err := Render([]byte(hashed("2.0", "9ab1")), opts)
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Manifest)
	wantField(t, find(t, out, "ConfigMap", "cart-config-5f2c"), "data.greeting", "hello from 1.0")
	wantField(t, find(t, out, "ConfigMap", "cart-config-9ab1"), "data.greeting", "hello from 2.0")
	wantField(t, find(t, out, "Deployment", "cart"), "spec.template.spec.volumes[0].configMap.name", "cart-config-5f2c")
	wantField(t, find(t, out, "Deployment", "cart-canary"), "spec.template.spec.volumes[0].configMap.name", "cart-config-9ab1")
	if !hasWarning(res.Warnings, "ConfigMap cart-config-5f2c is not rendered by this chart version") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	if again := render(t, out, opts); again != out {
		t.Errorf("not idempotent:\n%s", lineDiffString(out, again))
	}
	swapped := render(t, hashed("2.0", "9ab1"), Options{Stage: mustStage(t, "swap"), Workloads: []string{"cart"}, ProductionManifest: []byte(out)})
	if strings.Contains(swapped, "cart-config-5f2c") {
		t.Errorf("the old config outlives swap:\n%s", swapped)
	}
}

// Secrets: a change in stringData counts as a change, the same data written as
// data or stringData does not.
func TestConfigContentComparison(t *testing.T) {
	node := func(s string) *yaml.RNode { return yaml.MustParse(s) }
	b64 := base64.StdEncoding.EncodeToString([]byte("v"))
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"kind: Secret\ndata: {k: " + b64 + "}", "kind: Secret\nstringData: {k: v}", true},
		{"kind: Secret\ndata: {k: " + b64 + "}", "kind: Secret\ntype: Opaque\ndata: {k: " + b64 + "}", true},
		{"kind: Secret\nstringData: {k: v}", "kind: Secret\nstringData: {k: w}", false},
		{"kind: Secret\ntype: kubernetes.io/tls\ndata: {k: " + b64 + "}", "kind: Secret\ndata: {k: " + b64 + "}", false},
		{"kind: ConfigMap\ndata: {k: v}\nmetadata: {labels: {a: b}}", "kind: ConfigMap\ndata: {k: v}", true},
		{"kind: ConfigMap\ndata: {k: v}", "kind: ConfigMap\nbinaryData: {k: " + b64 + "}", true},
		{"kind: ConfigMap\ndata: {k: v}", "kind: ConfigMap\ndata: {k: v, l: v}", false},
	} {
		if got := sameContent(node(tt.a), node(tt.b)); got != tt.same {
			t.Errorf("sameContent(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

func hasWarning(warnings []string, part string) bool {
	for _, w := range warnings {
		if strings.Contains(w, part) {
			return true
		}
	}
	return false
}

// Secrets never reach a warning or an error: only names do.
func TestConfigMessagesNameNoSecret(t *testing.T) {
	workloads := []string{"cart"}
	stable := render(t, configured("1.0"), Options{Workloads: workloads})
	res, err := Render([]byte(configured("2.0")), Options{Stage: mustStage(t, "10"), Workloads: workloads, ProductionManifest: []byte(stable)})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Warnings {
		for _, v := range []string{"key-1.0", "key-2.0", base64.StdEncoding.EncodeToString([]byte("key-2.0"))} {
			if strings.Contains(w, v) {
				t.Errorf("warning %q shows a Secret's value", w)
			}
		}
	}
}

// Helm 4 stores a release's manifest without the filename annotation it hands a
// post-renderer: production's content, written back under the original name, gets
// the annotation of the object it replaces, so that Helm files it as before.
func TestConfigHelm4StoredManifest(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join("../test/golden/inputs", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	stable := render(t, read("configured-1.0.helm4.yaml"), Options{})
	var stored []string
	for _, line := range strings.SplitAfter(stable, "\n") {
		if !strings.Contains(line, helm4FilenameAnnotation) {
			stored = append(stored, line)
		}
	}
	out := render(t, read("configured-2.0.helm4.yaml"), Options{Stage: mustStage(t, "10"), ProductionManifest: []byte(strings.Join(stored, ""))})
	cm := find(t, out, "ConfigMap", "cfg-web")
	wantField(t, cm, "data.app\\.conf", "greeting = hello from 1.0\n")
	wantField(t, cm, "metadata.annotations.postrenderer\\.helm\\.sh/postrender-filename", "configured/templates/configmap.yaml")
	wantField(t, find(t, out, "Secret", "cfg-web"), "metadata.annotations.postrenderer\\.helm\\.sh/postrender-filename", "configured/templates/secret.yaml")
}
