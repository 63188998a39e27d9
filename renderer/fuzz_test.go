package renderer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/internal/benchstream"
	"github.com/helm-canary/helm-canary/internal/luacheck"
	"github.com/helm-canary/helm-canary/stages"
)

// fuzzConfigs seed the canary: settings: every routing extra, ASM, hostile names
// (refused), a bad regex (refused).
var fuzzConfigs = []string{
	"",
	"workloads:\n  cart:\n    userPercent: {header: x-user-id}\n    sticky: {cookie: cv, maxAge: 60}\n    mirror: {percent: 5}\n",
	"mesh: asm\nworkloads:\n  app-a:\n    userPercent: {header: x-user-id}\n  productpage:\n    userPercent: {header: X-User, tagHeader: x-pp}\n",
	"workloads:\n  reviews-v1:\n    match: [{headers: {end-user: {exact: jason}}}, {uri: {regex: \"/v[0-9]+\"}}]\n    gateway: {name: gw, hosts: [shop.example.com], create: true}\n",
	"workloads:\n  cart:\n    userPercent: {header: \"x\\nos.execute('id')--\"}\n",
	"workloads:\n  cart:\n    match: [{headers: {a: {regex: \"(a\"}}}]\n",
	"canaryReplicas: 1\ningress: {namespace: edge, selector: {app: edge}}\nworkloads:\n  productpage: {stage: \"90\"}\n",
}

// FuzzRender is a property test over a fuzzed stream and fuzzed canary: settings.
// For any input Render must not panic, and must either fail with a message and no
// output, or produce output that:
//
//   - keeps every document it had no reason to touch byte for byte, in order;
//   - parses whenever the input did, with no kind/namespace/name more often than in
//     the input;
//   - carries gateway filters whose Lua compiles and runs in LuaJIT (skipped
//     without luajit only under -short);
//   - renders to itself again (render(render(x)) == render(x));
//   - has the weights of every route it wrote sum to 100;
//   - names the canary's ConfigMap and Secret copies in canary pod templates only.
//
// The production manifest is the previous stream (or, without one, the stream
// itself) rendered at stable, as helm canary stage would have deployed it.
//
// Run it with:
//
//	go test ./renderer -run XXX -fuzz FuzzRender -fuzztime 60s
func FuzzRender(f *testing.F) {
	inputs, _ := filepath.Glob("../test/golden/inputs/*.yaml")
	for _, p := range inputs {
		if data, err := os.ReadFile(p); err == nil {
			for _, c := range fuzzConfigs {
				f.Add(data, uint8(10), "", c, []byte(nil))
			}
		}
	}
	for _, c := range fuzzConfigs {
		f.Add([]byte(appAt("2.0")), uint8(37), "", c, []byte(nil))
	}
	f.Add([]byte(appAt("2.0")), uint8(101), "", "", []byte(nil))
	f.Add([]byte(reviews), uint8(90), "reviews-v1", fuzzConfigs[3], []byte(nil))
	f.Add([]byte("kind: Deployment\nmetadata: {name: x}\n"), uint8(0), "x", "", []byte(nil))
	f.Add([]byte("---\n--- \n...\n"), uint8(102), "", "", []byte(nil))
	f.Add([]byte("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\"},\"spec\":{\"selector\":{\"a\":\"b\"}}}"), uint8(50), "", "", []byte(nil))
	for _, shape := range benchstream.Shapes { // flow style, comments and CRLF
		f.Add(benchstream.ShapeBytes(3, shape), uint8(10), "", "", []byte(nil))
		f.Add(benchstream.ShapeBytes(2, shape), uint8(103), "wl-0002", fuzzConfigs[1], []byte(nil))
	}
	// Configuration that changes between versions (config.go), at every kind of stage.
	for _, stage := range []uint8{0, 10, 100, 101, 102, 103} {
		f.Add([]byte(configured("2.0")), stage, "", "", []byte(configured("1.0")))
		f.Add([]byte(configured("2.0")), stage, "cart", "", []byte(configured("1.0")))
	}
	f.Fuzz(func(t *testing.T, in []byte, stage uint8, workload, config string, previous []byte) {
		var st stages.Stage
		switch {
		case stage <= 100:
			st, _ = stages.Weight(int(stage))
		case stage == 101:
			st = stages.Swap
		case stage == 102:
			st = stages.Final
		default:
			st = stages.Stable
		}
		var opts Options
		if c, err := ParseConfig([]byte(config)); err == nil {
			if err := c.Apply(&opts); err != nil {
				opts = Options{}
			}
		}
		if workload != "" {
			opts.Workloads = []string{workload}
		}
		// Production as helm canary stage would have deployed it: the stream at
		// stable (labelled pods, so that live stages are allowed), else as is.
		opts.Stage, opts.ProductionManifest = stages.Stable, nil
		if len(previous) == 0 {
			previous = in
		}
		if prod, err := Render(previous, opts); err == nil {
			opts.ProductionManifest = prod.Manifest
		} else {
			opts.ProductionManifest = in
		}
		opts.Stage = st
		res, err := Render(in, opts)
		if err != nil {
			if len(res.Manifest) != 0 || err.Error() == "" {
				t.Fatalf("error %q with %d bytes of output", err, len(res.Manifest))
			}
			return
		}
		inObjs, perr := kio.FromBytes(in)
		if perr != nil {
			return // garbage in documents we never needed to read passes through as is
		}
		outObjs, perr := kio.FromBytes(res.Manifest)
		if perr != nil {
			t.Fatalf("valid input rendered to output that does not parse: %v\ninput:\n%s\noutput:\n%s", perr, in, res.Manifest)
		}
		again, err := Render(in, opts)
		if err != nil || !bytes.Equal(again.Manifest, res.Manifest) {
			t.Fatalf("render is not deterministic")
		}
		untouchedInOrder(t, in, res.Manifest)
		noNewDuplicates(t, inObjs, outObjs)
		luaRuns(t, outObjs)
		weightsSum(t, in, res.Manifest)
		copiesCanaryOnly(t, outObjs)
		twice, err := Render(res.Manifest, opts)
		if err != nil {
			t.Fatalf("rendering the output again fails: %v\noutput:\n%s", err, res.Manifest)
		}
		if !bytes.Equal(twice.Manifest, res.Manifest) {
			t.Fatalf("render(render(x)) != render(x):\n%s", lineDiffString(string(res.Manifest), string(twice.Manifest)))
		}
	})
}

// rewritten are the kinds a render may change or make (a previous render's copies
// are made anew); ConfigMaps and Secrets a canaried pod template references may
// follow the canary's version. Every other document is the input's, untouched.
var rewritten = map[string]bool{"Deployment": true, "VirtualService": true, "DestinationRule": true,
	"HorizontalPodAutoscaler": true, "EnvoyFilter": true, "WasmPlugin": true, "ASMHeaderPropagation": true,
	"Gateway": true, "ConfigMap": true, "Secret": true}

// untouchedInOrder: each input document of a kind a render never rewrites is in the
// output byte for byte, in the input's order.
func untouchedInOrder(t *testing.T, in, out []byte) {
	t.Helper()
	at := 0
	for _, d := range splitDocuments(in) {
		if d.empty() {
			continue
		}
		n, err := d.parse()
		if err != nil || n == nil || rewritten[n.GetKind()] {
			continue
		}
		i := bytes.Index(out[at:], d.body)
		if i < 0 {
			t.Fatalf("%s is not in the output byte for byte after the documents before it:\n%s\noutput:\n%s", d.describe(), d.body, out)
		}
		at += i + len(d.body)
	}
}

func objectKey(n *yaml.RNode) string {
	return n.GetKind() + " " + n.GetNamespace() + "/" + n.GetName()
}

// noNewDuplicates: no kind/namespace/name is in the output more often than in the
// input (or more than once, when the input had it at most once).
func noNewDuplicates(t *testing.T, in, out []*yaml.RNode) {
	t.Helper()
	count := map[string]int{}
	for _, n := range in {
		count[objectKey(n)]++
	}
	seen := map[string]int{}
	for _, n := range out {
		k := objectKey(n)
		seen[k]++
		if seen[k] > 1 && seen[k] > count[k] {
			t.Fatalf("%s is in the output %d times, in the input %d times", k, seen[k], count[k])
		}
	}
}

// luaRuns: every gateway filter's Lua compiles and tags a user in LuaJIT.
func luaRuns(t *testing.T, out []*yaml.RNode) {
	t.Helper()
	for _, n := range out {
		if n.GetKind() != "EnvoyFilter" {
			continue
		}
		code, err := n.GetString("spec.configPatches[0].patch.value.typed_config.inlineCode")
		if err != nil {
			continue // the chart's own EnvoyFilter
		}
		a := n.GetAnnotations()
		user, tag := a[AnnotationUserHeader], a[AnnotationTagHeader]
		res, err := luacheck.Run(code, []map[string]string{{lower(user): "jason", lower(tag): "spoofed"}})
		if errors.Is(err, luacheck.ErrNoLuaJIT) && testing.Short() {
			return
		}
		if err != nil {
			t.Fatalf("EnvoyFilter %s: %v", n.GetName(), err)
		}
		if v := res[0].Headers[lower(tag)]; v != TrackCanary && v != TrackProduction {
			t.Fatalf("EnvoyFilter %s tagged a user %q", n.GetName(), v)
		}
	}
}

// copiesCanaryOnly: a ConfigMap or Secret copy made for the canary is read by
// canary pod templates alone; production keeps reading the original.
func copiesCanaryOnly(t *testing.T, out []*yaml.RNode) {
	t.Helper()
	copies := map[string]bool{}
	for _, n := range out {
		if n.GetAnnotations()[AnnotationCopyOf] != "" {
			copies[n.GetKind()+"/"+n.GetName()] = true
		}
	}
	if len(copies) == 0 {
		return
	}
	for _, n := range out {
		tmpl := podTemplateOf(n)
		if tmpl == nil {
			continue
		}
		canary := n.GetKind() == "Deployment" && stringMapNode(lookup(tmpl, "metadata", "labels"))[DefaultTrackLabel] == TrackCanary
		for _, ref := range podConfigRefs(tmpl) {
			if copies[ref.kind+"/"+ref.node.Value] && !canary {
				t.Fatalf("%s %s reads %s %s, a copy made for the canary", n.GetKind(), n.GetName(), ref.kind, ref.node.Value)
			}
		}
	}
}

func lower(s string) string { return string(bytes.ToLower([]byte(s))) }

// weightsSum: in every VirtualService the render wrote (not in the input byte for
// byte), each route with weighted destinations has weights summing to 100.
func weightsSum(t *testing.T, in, out []byte) {
	t.Helper()
	for _, d := range splitDocuments(out) {
		if d.empty() || bytes.Contains(in, d.body) {
			continue
		}
		n, err := d.parse()
		if err != nil || n == nil || n.GetKind() != "VirtualService" {
			continue
		}
		for _, proto := range []string{"http", "tcp", "tls"} {
			routes := lookup(n.YNode(), "spec", proto)
			if routes == nil {
				continue
			}
			for i, r := range routes.Content {
				dests := field(r, "route")
				if dests == nil || len(dests.Content) < 2 {
					continue
				}
				sum := 0
				for _, dst := range dests.Content {
					if w := field(dst, "weight"); w != nil {
						v, _ := strconv.Atoi(w.Value)
						sum += v
					}
				}
				if sum != 100 {
					t.Fatalf("VirtualService %s %s[%d]: weights sum to %d:\n%s", n.GetName(), proto, i, sum, d.body)
				}
			}
		}
	}
}
