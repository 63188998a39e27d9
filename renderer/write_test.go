package renderer

import (
	"bytes"
	"testing"

	"github.com/helm-canary/helm-canary/internal/benchstream"
)

// TestRenderToMatchesRender: the streaming RenderTo writes exactly Render's
// manifest, gives the warnings before writing, and writes nothing when the render
// fails; the size prepare computes bounds the manifest, so Render allocates its
// output once.
func TestRenderToMatchesRender(t *testing.T) {
	inputs := idempotenceInputs(t)
	for _, shape := range benchstream.Shapes {
		inputs["bench-"+string(shape)] = benchstream.ShapeBytes(10, shape)
	}
	inputs["refused"] = []byte(appAt("2.0") + appAt("2.0")) // one Deployment twice
	for name, in := range inputs {
		for _, opts := range []Options{{Stage: mustStage(t, "10")}, {Stage: mustStage(t, "stable")}, {Stage: mustStage(t, "10"), Part: PartMesh}} {
			want, werr := Render(in, opts)
			var out bytes.Buffer
			var warned []string
			got, gerr := RenderTo(&out, in, opts, func(w string) {
				if out.Len() > 0 {
					t.Errorf("%s: a warning after output was written", name)
				}
				warned = append(warned, w)
			})
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("%s: Render error %v, RenderTo error %v", name, werr, gerr)
			}
			if gerr != nil {
				if out.Len() > 0 {
					t.Errorf("%s: RenderTo failed (%v) and wrote %d bytes", name, gerr, out.Len())
				}
				continue
			}
			if !bytes.Equal(out.Bytes(), want.Manifest) {
				t.Errorf("%s: RenderTo wrote another manifest than Render", name)
			}
			if len(warned) != len(want.Warnings) || len(got.Workloads) != len(want.Workloads) {
				t.Errorf("%s: RenderTo reported %d warnings, %d workloads; Render %d, %d", name, len(warned), len(got.Workloads), len(want.Warnings), len(want.Workloads))
			}
			if opts.Part == PartAll {
				_, size, err := prepare(in, opts)
				if err != nil || size < len(want.Manifest) {
					t.Errorf("%s: prepare's size %d < manifest %d (%v)", name, size, len(want.Manifest), err)
				}
			}
		}
	}
}
