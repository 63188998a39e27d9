package renderer

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/internal/benchstream"
)

func encodeWithYAMLv3(t *testing.T, n *yaml.Node) string {
	t.Helper()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestEmitMatchesEncoder: every document the renderer writes through emitBlock is
// byte for byte what yaml.v3's encoder writes, over the golden inputs, the fuzz
// seeds' settings and the benchmark's stream shapes at every stage.
func TestEmitMatchesEncoder(t *testing.T) {
	fast, mismatches := 0, 0
	verifyEmit = func(node *yaml.RNode, emitted []byte) {
		fast++
		if want := encodeWithYAMLv3(t, node.Document()); string(emitted) != want && mismatches < 5 {
			mismatches++
			t.Errorf("emitBlock wrote\n%s\nyaml.v3 writes\n%s", emitted, want)
		}
	}
	defer func() { verifyEmit = nil }()
	inputs := idempotenceInputs(t)
	for _, shape := range benchstream.Shapes {
		inputs["bench-"+string(shape)] = benchstream.ShapeBytes(20, shape)
	}
	for _, in := range inputs {
		for _, config := range fuzzConfigs {
			for _, stage := range []string{"stable", "10", "100", "swap", "final"} {
				var opts Options
				if c, err := ParseConfig([]byte(config)); err == nil {
					if err := c.Apply(&opts); err != nil {
						continue
					}
				}
				opts.Stage = mustStage(t, stage)
				_, _ = Render(in, opts) // refusals are other tests' business

			}
		}
	}
	if fast < 100 {
		t.Errorf("only %d documents went through emitBlock", fast)
	}
	t.Logf("%d documents emitted", fast)
}

// TestEmitRandomTrees: on random trees of awkward scalars, emitBlock either
// declines or writes exactly what yaml.v3 writes.
func TestEmitRandomTrees(t *testing.T) {
	scalars := []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "8080"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: ""},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "true"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: "yes"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "a: b"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: "-x"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "x y"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: "1.0"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "0x1F"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: "~"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "Null"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: "héllo"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "a\nb"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: "acme/app:1.2.0"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "^/v[0-9]+$"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: "x #y"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "10s"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: " lead"},
		{Kind: yaml.ScalarNode, Tag: "!!int", Value: "90"}, {Kind: yaml.ScalarNode, Tag: "!!int", Value: "-3"},
		{Kind: yaml.ScalarNode, Tag: "!!int", Value: "010"}, {Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"},
		{Kind: yaml.ScalarNode, Value: "12"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: "helm-canary.io/track"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "x", Style: yaml.DoubleQuotedStyle},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "it's", Style: yaml.SingleQuotedStyle},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "canary", LineComment: "# c"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.Repeat("k", 129)},
		{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, {Kind: yaml.ScalarNode, Tag: "!!float", Value: "1.5"},
	}
	rng := rand.New(rand.NewSource(1))
	var tree func(depth int) *yaml.Node
	tree = func(depth int) *yaml.Node {
		switch r := rng.Intn(10); {
		case depth > 3 || r < 5:
			c := *scalars[rng.Intn(len(scalars))]
			return &c
		case r < 8:
			m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			for i := rng.Intn(4); i > 0; i-- {
				k := *scalars[rng.Intn(len(scalars))]
				if rng.Intn(3) > 0 {
					k = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: []string{"host", "subset", "weight", "a.b/c-d"}[rng.Intn(4)]}
				}
				m.Content = append(m.Content, &k, tree(depth+1))
			}
			return m
		default:
			s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			for i := rng.Intn(4); i > 0; i-- {
				s.Content = append(s.Content, tree(depth+1))
			}
			return s
		}
	}
	emitted := 0
	for i := 0; i < 20000; i++ {
		root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for j := 1 + rng.Intn(3); j > 0; j-- {
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: []string{"spec", "metadata", "x"}[j%3]}, tree(1))
		}
		doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
		var buf bytes.Buffer
		buf.WriteString("prefix\n")
		if !emitBlock(&buf, doc) {
			if buf.String() != "prefix\n" {
				t.Fatalf("emitBlock declined but wrote %q", buf.String())
			}
			continue
		}
		emitted++
		if got, want := strings.TrimPrefix(buf.String(), "prefix\n"), encodeWithYAMLv3(t, doc); got != want {
			t.Fatalf("emitBlock wrote\n%s\nyaml.v3 writes\n%s", got, want)
		}
	}
	if emitted < 2000 {
		t.Errorf("emitBlock wrote only %d of the trees", emitted)
	}
}

// TestPlainStringIsWhatMarshalWrites: the fast path of scalarText and emitBlock
// agrees with yaml.v3 on strings it calls plain.
func TestPlainStringIsWhatMarshalWrites(t *testing.T) {
	for _, s := range []string{"canary", "production", "helm-canary.io/track", "wl-0001", "a.b_c/d-e", "v1", "Yes", "yes", "NO", "on", "True", "null", "Null", "y", "n", "x1e3", "inf", "nan", "e5", "_x", "9z"} {
		out, err := yaml.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if plain := strings.TrimSuffix(string(out), "\n") == s; plainString(s) && !plain {
			t.Errorf("plainString(%q) but yaml.v3 writes %q", s, out)
		}
	}
}
