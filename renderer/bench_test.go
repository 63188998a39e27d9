package renderer

import (
	"bytes"
	"io"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/internal/benchstream"
	"github.com/helm-canary/helm-canary/stages"
)

// BenchmarkRender times the release `make bench` times, n=3000 workloads (each a
// ConfigMap, a Service and a Deployment, shaped as Helm 3 hands them to a
// post-renderer), in every stream shape: all workloads targeted, 10 targeted, and
// the floor on the same stream. hack/bench turns the same three into ratios.
func BenchmarkRender(b *testing.B) {
	for _, shape := range benchstream.Shapes {
		in := benchstream.ShapeBytes(3000, shape)
		all := Options{Stage: mustStageB(b, "10")}
		few := Options{Stage: mustStageB(b, "10")}
		for i := 1; i <= 10; i++ {
			few.Workloads = append(few.Workloads, benchstream.Name(i*250))
		}
		for _, c := range []struct {
			name string
			opts Options
		}{{"all", all}, {"10", few}} {
			b.Run(string(shape)+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					if _, err := Render(in, c.opts); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(string(shape)+"/floor", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				yamlRoundTrip(b, in)
			}
		})
	}
}

// yamlRoundTrip is the floor, as hack/yamlfloor computes it: decode every document
// and re-encode it, one encoder per document (an encoder's event queue only grows).
func yamlRoundTrip(b *testing.B, in []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(in))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err == io.EOF {
			return
		} else if err != nil {
			b.Fatal(err)
		}
		enc := yaml.NewEncoder(io.Discard)
		if err := enc.Encode(&n); err != nil {
			b.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func mustStageB(b *testing.B, s string) (st stagesStage) {
	st, err := parseStage(s)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

type stagesStage = stages.Stage

var parseStage = stages.Parse
