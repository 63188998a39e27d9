package benchstream

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestStreamShape checks the properties the benchmark figures rely on: the
// stream is valid YAML, has three documents per workload in Helm's kind
// order, every Service selects its own Deployment (so "all targeted" really
// targets n workloads), and n=3000 is about the advertised 3.3 MB.
func TestStreamShape(t *testing.T) {
	const n = 3000
	var buf bytes.Buffer
	st, err := Write(&buf, n)
	if err != nil {
		t.Fatal(err)
	}
	if st.Documents != 3*n || st.Bytes != int64(buf.Len()) {
		t.Fatalf("stats %+v, buffer %d bytes", st, buf.Len())
	}
	t.Logf("n=%d: %d bytes, %d documents", n, st.Bytes, st.Documents)
	if mb := float64(st.Bytes) / 1e6; mb < 3.1 || mb > 3.5 {
		t.Errorf("stream is %.2f MB, want about 3.3", mb)
	}
	if got := strings.Count(buf.String(), "---\n# Source: bench/templates/wl-"); got != 3*n {
		t.Errorf("%d Source headers, want %d", got, 3*n)
	}

	type object struct {
		Kind     string
		Metadata struct {
			Name   string
			Labels map[string]string
		}
		Spec struct {
			Selector map[string]any
			Template struct {
				Metadata struct{ Labels map[string]string }
			}
		}
	}
	dec := yaml.NewDecoder(&buf)
	var kinds []string
	selects := map[string]string{} // Service name -> selected app
	podApp := map[string]string{}  // Deployment name -> pod template app label
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("document %d: %v", len(kinds)+1, err)
		}
		if len(kinds) == 0 || kinds[len(kinds)-1] != o.Kind {
			kinds = append(kinds, o.Kind)
		}
		switch o.Kind {
		case "Service":
			selects[o.Metadata.Name], _ = o.Spec.Selector["app"].(string)
		case "Deployment":
			podApp[o.Metadata.Name] = o.Spec.Template.Metadata.Labels["app"]
			if o.Metadata.Labels["version"] == "" {
				t.Errorf("Deployment %s has no version label", o.Metadata.Name)
			}
		}
	}
	if want := "ConfigMap,Service,Deployment"; strings.Join(kinds, ",") != want {
		t.Errorf("kind runs %v, want %s", kinds, want)
	}
	if len(podApp) != n || len(selects) != n {
		t.Fatalf("%d Deployments, %d Services, want %d each", len(podApp), len(selects), n)
	}
	for name, app := range podApp {
		if selects[name] != app {
			t.Errorf("Service %s selects app=%q, Deployment pods have app=%q", name, selects[name], app)
		}
	}
}

// TestShapesHoldTheSameObjects: every shape is the Block stream written another
// way, so the renderer's figures on them compare like with like. Each document
// decodes to the same value as Block's, its Source header is Helm's, and each
// shape really has the layout it is named for.
func TestShapesHoldTheSameObjects(t *testing.T) {
	const n = 40
	decode := func(b []byte) []any {
		t.Helper()
		var out []any
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				return out
			} else if err != nil {
				t.Fatalf("document %d: %v", len(out)+1, err)
			}
			out = append(out, v)
		}
	}
	block := decode(Bytes(n))
	for _, shape := range Shapes[1:] {
		in := ShapeBytes(n, shape)
		got := decode(in)
		if len(got) != len(block) {
			t.Fatalf("%s: %d documents, block %d", shape, len(got), len(block))
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], block[i]) {
				t.Errorf("%s: document %d is\n%v\nblock has\n%v", shape, i+1, got[i], block[i])
			}
		}
		if c := strings.Count(string(in), "---\n# Source: bench/templates/wl-"); c != 3*n {
			t.Errorf("%s: %d Source headers, want %d", shape, c, 3*n)
		}
		switch shape {
		case Flow:
			for _, want := range []string{"labels: {app: ", "metadata: {name: ", "ports: [{name: http", "matchLabels: {app: "} {
				if !strings.Contains(string(in), want) {
					t.Errorf("flow stream has no %q", want)
				}
			}
		case Mixed:
			crlf := strings.Count(string(in), "\r\n")
			if crlf == 0 || crlf == strings.Count(string(in), "\n") {
				t.Errorf("mixed stream has %d CRLF line ends: want some, not all", crlf)
			}
			if !strings.Contains(string(in), "version: v1 # bumped by CI\r\n") || !strings.Contains(string(in), "    # Standard labels") {
				t.Error("mixed stream lacks its comments")
			}
		}
	}
}
