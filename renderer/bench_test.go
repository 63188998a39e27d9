package renderer

import (
	"bytes"
	"io"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/internal/benchstream"
	"github.com/helm-canary/helm-canary/stages"
)

// benchStream is the release `make bench` times: n workloads, each a ConfigMap, a
// Service and a Deployment, shaped as Helm 3 hands them to a post-renderer.
func benchStream(n int) []byte { return benchstream.Bytes(n) }

func BenchmarkRenderAllTargeted(b *testing.B) {
	in := benchStream(3000)
	opts := Options{Stage: mustStageB(b, "10")}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Render(in, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderTenTargeted(b *testing.B) {
	in := benchStream(3000)
	opts := Options{Stage: mustStageB(b, "10")}
	for i := 1; i <= 10; i++ {
		opts.Workloads = append(opts.Workloads, benchstream.Name(i*250))
	}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Render(in, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkYAMLRoundTrip is the floor: decode and re-encode every document.
func BenchmarkYAMLRoundTrip(b *testing.B) {
	in := benchStream(3000)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		dec := yaml.NewDecoder(bytes.NewReader(in))
		enc := yaml.NewEncoder(io.Discard)
		for {
			var n yaml.Node
			if err := dec.Decode(&n); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			if err := enc.Encode(&n); err != nil {
				b.Fatal(err)
			}
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
