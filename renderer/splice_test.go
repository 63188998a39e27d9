package renderer

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Splicing the rendered bytes and re-encoding the edited tree must give the same
// objects for every input and stage; only formatting may differ.
func TestSpliceMatchesEncode(t *testing.T) {
	hpa := "---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: cart}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: cart}\n  minReplicas: 1\n  maxReplicas: 3\n"
	noReplicas := strings.Replace(appAt("2.0"), "  replicas: 3\n", "", 1)
	flowLabels := strings.Replace(appAt("2.0"), "  labels:\n    app: cart\nspec:", "  labels: {app: cart}\nspec:", 1)
	withTrack := strings.Replace(appAt("2.0"), "      labels:\n        app: cart\n", "      labels:\n        app: cart\n        helm-canary.io/track: production\n", 1)
	quotedName := strings.Replace(appAt("2.0"), "  name: cart\n", "  name: \"cart\"\n", 1)
	comments := strings.Replace(appAt("2.0"), "  labels:\n    app: cart\n", "  labels:\n    # who owns it\n    app: cart # trailing\n", 1)
	flowMeta := strings.Replace(appAt("2.0"), "metadata:\n  name: cart\n  labels:\n    app: cart\nspec:", "metadata: {name: cart, labels: {app: cart}}\nspec:", 1)
	flowAll := strings.Replace(flowMeta, "  replicas: 3\n  selector:\n    matchLabels:\n      app: cart\n", "  replicas: 3\n  selector: {matchLabels: {app: cart}}\n", 1)
	flowAll = strings.Replace(flowAll, "    metadata:\n      labels:\n        app: cart\n", "    metadata: {labels: {app: cart}}\n", 1)
	flowSpec := strings.Replace(flowMeta, "  replicas: 3\n  selector:\n    matchLabels:\n      app: cart\n  template:\n", "  {replicas: 3, selector: {matchLabels: {app: cart}}, template: {metadata: {labels: {app: cart}}, spec: {containers: [{name: cart, image: \"repo/cart:2.0\", ports: [{name: http, containerPort: 8080}]}]}}}\n", 1)
	flowSpec = strings.Replace(flowSpec, "\nspec:\n  {", "\nspec: {", 1)
	flowSpec = flowSpec[:strings.Index(flowSpec, "}}}\n")+4]
	flowNameOnly := strings.Replace(appAt("2.0"), "metadata:\n  name: cart\n  labels:\n    app: cart\nspec:", "metadata: {name: cart}\nspec:", 1)
	flowAnnotations := strings.Replace(appAt("2.0"), "  name: cart\n  labels:\n", "  name: cart\n  annotations: {a: b}\n  labels:\n", 1)
	crlf := strings.ReplaceAll(appAt("2.0"), "\n", "\r\n")
	inputs := map[string]string{
		"plain": appAt("2.0"), "hpa": appAt("2.0") + hpa, "no replicas": noReplicas, "flow labels": flowLabels,
		"flow metadata": flowMeta, "flow everything": flowAll, "flow everything, hpa": flowAll + hpa,
		"flow spec": flowSpec, "flow spec, hpa": flowSpec + hpa, "flow metadata, name only": flowNameOnly,
		"flow annotations": flowAnnotations, "crlf": crlf, "crlf, hpa": crlf + hpa,
		"crlf, flow":        strings.ReplaceAll(flowAll, "\n", "\r\n"),
		"track already set": withTrack, "quoted name": quotedName, "comments": comments,
		"sidecar": strings.Replace(appAt("2.0"), "      - name: cart\n", "      - name: log\n        image: log\n      - name: cart\n", 1),
	}
	pinnedSame := productionManifest(t)
	for name, in := range inputs {
		for _, stage := range []string{"stable", "10", "swap", "final"} {
			for _, pinned := range []string{"", pinnedSame} {
				opts := Options{Stage: mustStage(t, stage), ProductionManifest: []byte(pinned)}
				if pinned != "" && name != "plain" {
					continue
				}
				encodedSplits = 0
				spliced := render(t, in, opts)
				if encodedSplits > 0 && pinned == "" && name != "quoted name" {
					t.Errorf("%s/%s: re-encoded, not edited in place", name, stage)
				}
				spliceEnabled = false
				encoded := render(t, in, opts)
				spliceEnabled = true
				a, b := objects(t, spliced), objects(t, encoded)
				if len(a) != len(b) {
					t.Fatalf("%s/%s: %d objects spliced, %d encoded", name, stage, len(a), len(b))
				}
				for i := range a {
					if !equalNode(a[i].YNode(), b[i].YNode()) {
						t.Errorf("%s/%s: object %d differs:\nspliced:\n%s\nencoded:\n%s", name, stage, i, a[i].MustString(), b[i].MustString())
					}
				}
			}
		}
	}
}

func TestSplicePreservesFormatting(t *testing.T) {
	in := appAt("2.0")
	out := render(t, in, Options{Stage: mustStage(t, "10")})
	// The chart wrote "      - name: cart" (wide sequence indent); an encoder would
	// rewrite it, the splicer keeps it.
	if !strings.Contains(out, "      containers:\n      - name: cart\n") {
		t.Fatalf("layout changed:\n%s", out)
	}
	want := strings.Replace(strings.Split(in, "---\n")[2], "  labels:\n    app: cart\n", "  labels:\n    helm-canary.io/track: production\n    app: cart\n", 1)
	want = strings.Replace(want, "      labels:\n        app: cart\n", "      labels:\n        helm-canary.io/track: production\n        app: cart\n", 1)
	if !strings.Contains(out, want) {
		t.Errorf("production is not the rendered bytes plus the track label lines:\n%s\nwant:\n%s", out, want)
	}
}

func TestEqualNode(t *testing.T) {
	a := yaml.MustParse("a: 1\nb: [x, 'y']\nc: {d: e}\n").YNode()
	b := yaml.MustParse("# c\nc:\n  d: e\nb:\n- x\n- \"y\"\na: 1\n").YNode()
	if !equalNode(a, b) {
		t.Error("same values in another layout compare unequal")
	}
	if equalNode(a, yaml.MustParse("a: \"1\"\nb: [x, y]\nc: {d: e}\n").YNode()) {
		t.Error("a string and an int compare equal")
	}
}

func TestScanSelector(t *testing.T) {
	tests := []struct {
		in   string
		want string // formatLabels, or "?" for "must parse"
	}{
		{"apiVersion: v1\nkind: Service\nspec:\n  ports:\n  - port: 80\n  selector:\n    app: cart\n    app.kubernetes.io/name: 'x'\n  type: ClusterIP\n", "{app=cart,app.kubernetes.io/name=x}"},
		{"kind: Service\nspec:\n  selector:\n    app: cart\nstatus: {}\n", "{app=cart}"},
		{"kind: Service\nspec:\n  selector: {app: cart}\n", "{app=cart}"},
		{"kind: Service\r\nspec:\r\n  selector: {app: cart, app.kubernetes.io/name: x}\r\n  ports: [{port: 80}]\r\n", "{app=cart,app.kubernetes.io/name=x}"},
		{"kind: Service\nspec:\n  selector: {app: 'cart'}\n", "?"},
		{"kind: Service\nspec:\n  selector: {app: *a}\n", "?"},
		{"kind: Service\nspec:\n  selector: {app: {x: y}}\n", "?"},
		{"kind: Service\nspec:\n  selector: {app: cart,\n    tier: web}\n", "?"},
		{"kind: Service\nspec:\n  selector: {app: cart}\n  selector: {app: x}\n", "?"},
		{"kind: Service\nspec:\n  selector:\n    app: cart\n    nested:\n      x: y\n", "?"},
		{"kind: Service\nspec:\n  selector:\n    app: \"a b\"\n", "?"},
		{"kind: Service\nspec:\n  ports: [{port: 80}]\n", "{}"},
		{"kind: Service\nspec: {selector: {app: x}}\n", "?"},
	}
	for _, tt := range tests {
		sel, ok := scanSelector([]byte(tt.in))
		got := "?"
		if ok {
			got = formatLabels(sel)
		}
		if got != tt.want {
			t.Errorf("scanSelector(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestScanKindAndNameFlowMetadata(t *testing.T) {
	tests := []struct{ in, kind, name string }{
		{"apiVersion: v1\nkind: Service\nmetadata: {name: cart}\n", "Service", "cart"},
		{"kind: Deployment\r\nmetadata: {name: cart, labels: {app: cart, name: other}}\r\n", "Deployment", "cart"},
		{"kind: Deployment\nmetadata: {labels: {name: x}, namespace: shop, name: cart-1.a}\n", "Deployment", "cart-1.a"},
		{"kind: Deployment\nmetadata: {name: cart, name: other}\n", "Deployment", ""},
		{"kind: Deployment\nmetadata: {labels: {name: x}}\n", "Deployment", ""},
		{"kind: Deployment\nmetadata: {name: 'cart'}\n", "Deployment", ""},
		{"kind: Deployment\nmetadata: {name: cart,\n  namespace: x}\n", "Deployment", ""},
		{"kind: Deployment\nmetadata: {name: &n cart}\n", "Deployment", ""},
		{"kind: Deployment\nmetadata: {name: cart}\nmetadata:\n  name: other\n", "Deployment", ""},
		{"kind: Deployment\nmetadata: {name: cart} # the API\n", "Deployment", ""},
		{"kind: Deployment\nmetadata: {name}\n", "Deployment", ""},
	}
	for _, tt := range tests {
		kind, name := scanKindAndName([]byte(tt.in))
		if kind != tt.kind || name != tt.name {
			t.Errorf("scanKindAndName(%q) = %q, %q; want %q, %q", tt.in, kind, name, tt.kind, tt.name)
		}
		// Whatever the scan says must be what a parser reads.
		if name != "" {
			if n, err := yaml.Parse(tt.in); err != nil || n.GetName() != name {
				t.Errorf("%q: the scan read name %q, the parser %v", tt.in, name, err)
			}
		}
	}
}
