package renderer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/helm-canary/helm-canary/stages"
)

// FuzzRender: for any input, Render must not panic, and must either fail with a
// message and no output, or produce output that parses whenever the input did.
//
//	go test ./renderer -run XXX -fuzz FuzzRender -fuzztime 60s
func FuzzRender(f *testing.F) {
	inputs, _ := filepath.Glob("../test/golden/inputs/*.yaml")
	for _, p := range inputs {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data, uint8(10), "")
		}
	}
	f.Add([]byte(appAt("2.0")), uint8(101), "")
	f.Add([]byte(reviews), uint8(90), "reviews-v1")
	f.Add([]byte("kind: Deployment\nmetadata: {name: x}\n"), uint8(0), "x")
	f.Add([]byte("---\n--- \n...\n"), uint8(102), "")
	f.Add([]byte("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\"},\"spec\":{\"selector\":{\"a\":\"b\"}}}"), uint8(50), "")
	f.Fuzz(func(t *testing.T, in []byte, stage uint8, workload string) {
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
		opts := Options{Stage: st, ProductionManifest: in}
		if workload != "" {
			opts.Workloads = []string{workload}
		}
		res, err := Render(in, opts)
		if err != nil {
			if len(res.Manifest) != 0 || err.Error() == "" {
				t.Fatalf("error %q with %d bytes of output", err, len(res.Manifest))
			}
			return
		}
		if _, perr := kio.FromBytes(in); perr != nil {
			return // garbage in documents we never needed to read passes through as is
		}
		if _, perr := kio.FromBytes(res.Manifest); perr != nil {
			t.Fatalf("valid input rendered to output that does not parse: %v\ninput:\n%s\noutput:\n%s", perr, in, res.Manifest)
		}
		again, err := Render(in, opts)
		if err != nil || !bytes.Equal(again.Manifest, res.Manifest) {
			t.Fatalf("render is not deterministic")
		}
	})
}
