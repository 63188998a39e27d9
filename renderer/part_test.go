package renderer

import (
	"bytes"
	"os"
	"testing"
)

func TestParsePart(t *testing.T) {
	for in, want := range map[string]Part{"": PartAll, "all": PartAll, "workloads": PartWorkloads, "mesh": PartMesh} {
		if got, err := ParsePart(in); err != nil || got != want {
			t.Errorf("ParsePart(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"Mesh", "routing", "workload"} {
		if _, err := ParsePart(bad); err == nil {
			t.Errorf("ParsePart(%q) accepted", bad)
		}
	}
}

func TestIsMeshObject(t *testing.T) {
	for v, want := range map[string]bool{
		"networking.istio.io/v1":             true,
		"networking.istio.io/v1beta1":        true,
		"extensions.istio.io/v1alpha1":       true,
		"security.istio.io/v1":               true,
		"telemetry.istio.io/v1":              true,
		"istio.alibabacloud.com/v1beta1":     true,
		"v1":                                 false,
		"apps/v1":                            false,
		"gateway.networking.k8s.io/v1":       false,
		"notistio.io/v1":                     false,
		"networking.istio.io.example.com/v1": false,
	} {
		if got := IsMeshObject(v); got != want {
			t.Errorf("IsMeshObject(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestSplitPartsScanAgreesWithParse: the cheap apiVersion scan classifies as the
// parser does, on the odd layouts too (quotes, comments, flow style, a List).
func TestSplitPartsOddLayouts(t *testing.T) {
	in := "apiVersion: \"networking.istio.io/v1\" # quoted\nkind: VirtualService\nmetadata: {name: a}\n" +
		"---\n# only a comment\n" +
		"---\n{\"apiVersion\": \"extensions.istio.io/v1alpha1\", \"kind\": \"WasmPlugin\", \"metadata\": {\"name\": \"w\"}}\n" +
		"---\nkind: ConfigMap\napiVersion: v1\nmetadata:\n  name: c\ndata:\n  apiVersion: networking.istio.io/v1\n" +
		"---\napiVersion: 'istio.alibabacloud.com/v1beta1'\nkind: ASMHeaderPropagation\nmetadata:\n  name: p"
	w, m, err := SplitParts([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	wantW := "---\n# only a comment\n---\nkind: ConfigMap\napiVersion: v1\nmetadata:\n  name: c\ndata:\n  apiVersion: networking.istio.io/v1\n"
	wantM := "apiVersion: \"networking.istio.io/v1\" # quoted\nkind: VirtualService\nmetadata: {name: a}\n" +
		"---\n{\"apiVersion\": \"extensions.istio.io/v1alpha1\", \"kind\": \"WasmPlugin\", \"metadata\": {\"name\": \"w\"}}\n" +
		"---\napiVersion: 'istio.alibabacloud.com/v1beta1'\nkind: ASMHeaderPropagation\nmetadata:\n  name: p"
	if string(w) != wantW {
		t.Errorf("workloads part:\n%s\nwant:\n%s", w, wantW)
	}
	if string(m) != wantM {
		t.Errorf("mesh part:\n%s\nwant:\n%s", m, wantM)
	}
	if _, _, err := SplitParts([]byte("{apiVersion: v1, kind: [unclosed\n")); err == nil {
		t.Error("a document that is not YAML was split without an error")
	}
}

// partWalks are the golden inputs walked through the stages from version P to N,
// with the settings of the seeds (per-user percentages on ASM, a cookie match).
var partWalks = []struct {
	name   string
	p, n   string
	config string
}{
	{"productpage", "productpage-83.helm3.yaml", "productpage-84.helm3.yaml", ""},
	{"productpage-helm4", "productpage-83.helm4.yaml", "productpage-84.helm4.yaml", ""},
	{"productpage-cookie", "productpage-83.helm3.yaml", "productpage-84.helm3.yaml",
		"workloads:\n  productpage:\n    match:\n    - headers:\n        cookie:\n          regex: \"^(.*?;\\\\s*)?(gray=true)(;.*)?$\"\n"},
	{"bookinfo", "bookinfo-1.20.2.helm3.yaml", "bookinfo-1.20.3.helm3.yaml", ""},
	{"appchain-asm", "appchain-v1.helm3.yaml", "appchain-v2.helm3.yaml",
		"mesh: asm\nworkloads:\n  app-a: {userPercent: {header: x-user-id}}\n  app-b: {userPercent: {header: x-user-id}}\n  app-c: {userPercent: {header: x-user-id}}\n"},
	{"kvstore", "kvstore-7.4.1.helm3.yaml", "kvstore-7.4.2.helm3.yaml", ""},
	{"stateful", "stateful-1.0.helm3.yaml", "stateful-1.0.helm3.yaml", ""},
}

// TestPartsPartitionTheStream: at every stage of a walk, the workload part and the
// mesh part of a render are the full render's documents, each byte for byte, each
// in exactly one part, in the stream's order; every routing object is in the mesh
// part and nothing else is. And each cluster can be rendered from what the
// workload cluster holds: production pinned from the previous stage's workload
// part gives the same parts as pinned from the full previous render, and the mesh
// part is the same whether it is rendered before the workload upgrade or after it
// (the two orders of a two-cluster stage).
func TestPartsPartitionTheStream(t *testing.T) {
	for _, walk := range partWalks {
		t.Run(walk.name, func(t *testing.T) {
			p, err := os.ReadFile("../test/golden/inputs/" + walk.p)
			if err != nil {
				t.Fatal(err)
			}
			n, err := os.ReadFile("../test/golden/inputs/" + walk.n)
			if err != nil {
				t.Fatal(err)
			}
			base := Options{Namespace: "shop"}
			if walk.config != "" {
				c, err := ParseConfig([]byte(walk.config))
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Apply(&base); err != nil {
					t.Fatal(err)
				}
			}
			at := func(stage string, draining bool, prod []byte, part Part) Options {
				o := base
				o.Stage, o.Draining, o.ProductionManifest, o.Part = mustStage(t, stage), draining, prod, part
				return o
			}
			render := func(in []byte, o Options) []byte {
				t.Helper()
				res, err := Render(in, o)
				if err != nil {
					t.Fatalf("stage %s part %s: %v", o.Stage, o.Part, err)
				}
				return res.Manifest
			}
			prevFull := render(p, at("stable", false, nil, PartAll))
			prevWorkloads := render(p, at("stable", false, nil, PartWorkloads))
			checkPartition(t, "stable", prevFull, prevWorkloads, render(p, at("stable", false, nil, PartMesh)))
			for _, step := range []struct {
				stage    string
				draining bool
			}{{"10", false}, {"preview", false}, {"90", false}, {"100", false}, {"swap", false}, {"final", true}, {"final", false}, {"stable", false}} {
				name := step.stage
				if step.draining {
					name += "-draining"
				}
				full := render(n, at(step.stage, step.draining, prevFull, PartAll))
				wantW, wantM, err := SplitParts(full)
				if err != nil {
					t.Fatal(err)
				}
				w := render(n, at(step.stage, step.draining, prevWorkloads, PartWorkloads))
				before := render(n, at(step.stage, step.draining, prevWorkloads, PartMesh))
				after := render(n, at(step.stage, step.draining, w, PartMesh))
				checkPartition(t, name, full, w, before)
				if !bytes.Equal(w, wantW) {
					t.Errorf("stage %s: the workload part pinned from the workload cluster's manifest differs from the full render's:\n%s", name, lineDiffString(string(wantW), string(w)))
				}
				if !bytes.Equal(before, wantM) {
					t.Errorf("stage %s: the mesh part rendered before the workload upgrade differs from the full render's:\n%s", name, lineDiffString(string(wantM), string(before)))
				}
				if !bytes.Equal(after, wantM) {
					t.Errorf("stage %s: the mesh part rendered after the workload upgrade differs from the full render's:\n%s", name, lineDiffString(string(wantM), string(after)))
				}
				prevFull, prevWorkloads = full, w
			}
		})
	}
}

// checkPartition checks that workloads and mesh are a partition of full.
func checkPartition(t *testing.T, stage string, full, workloads, mesh []byte) {
	t.Helper()
	wDocs, mDocs := splitDocuments(workloads), splitDocuments(mesh)
	i, j := 0, 0
	for k, d := range splitDocuments(full) {
		isMesh, err := d.isMesh()
		if err != nil {
			t.Fatal(err)
		}
		part, docs, pos := "workloads", wDocs, &i
		if isMesh {
			part, docs, pos = "mesh", mDocs, &j
		}
		if *pos >= len(docs) {
			t.Errorf("stage %s: document %d (%s) of the full render is missing from the %s part", stage, k+1, d.describe(), part)
			continue
		}
		got := docs[*pos]
		*pos++
		if !bytes.Equal(bytes.TrimSuffix(got.raw, []byte("\n")), bytes.TrimSuffix(d.raw, []byte("\n"))) {
			t.Errorf("stage %s: document %d (%s) differs in the %s part:\n%s", stage, k+1, d.describe(), part, lineDiffString(string(d.raw), string(got.raw)))
		}
	}
	if i != len(wDocs) || j != len(mDocs) {
		t.Errorf("stage %s: the parts hold %d+%d documents the full render does not (%d and %d of %d and %d matched)", stage, len(wDocs)-i, len(mDocs)-j, i, j, len(wDocs), len(mDocs))
	}
	for _, d := range mDocs {
		if ok, _ := d.isMesh(); !ok {
			t.Errorf("stage %s: %s is in the mesh part", stage, d.describe())
		}
	}
	if containsMeshDoc(wDocs) {
		t.Errorf("stage %s: a routing object is in the workload part", stage)
	}
}

func containsMeshDoc(docs []*document) bool {
	for _, d := range docs {
		if ok, _ := d.isMesh(); ok {
			return true
		}
	}
	return false
}
