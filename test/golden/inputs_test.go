package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// capture is a post-renderer that records what Helm hands it.
type capture struct{ got *bytes.Buffer }

func (c capture) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	c.got.Write(in.Bytes())
	return in, nil
}

// The Helm 3 inputs under inputs/ were captured from the helm 3 CLI by
// hack/capture-inputs.sh. Rendering the charts through the Helm SDK must give the
// same bytes, so a chart edit without a re-capture fails here.
func TestInputsMatchCharts(t *testing.T) {
	tests := []struct {
		file, release, chart string
		values               map[string]any
	}{
		{"productpage-83.helm3.yaml", "productpage", "../../examples/productpage", map[string]any{"image": map[string]any{"tag": "83"}}},
		{"productpage-84.helm3.yaml", "productpage", "../../examples/productpage", map[string]any{"image": map[string]any{"tag": "84"}}},
		{"bookinfo-1.20.2.helm3.yaml", "bookinfo", "../charts/bookinfo", map[string]any{"tag": "1.20.2"}},
		{"bookinfo-1.20.3.helm3.yaml", "bookinfo", "../charts/bookinfo", map[string]any{"tag": "1.20.3"}},
		{"appchain-v1.helm3.yaml", "ac", "../charts/appchain", nil},
		{"appchain-v2.helm3.yaml", "ac", "../charts/appchain", map[string]any{"a": map[string]any{"tag": "v2"}, "b": map[string]any{"tag": "v2"}, "c": map[string]any{"tag": "v3"}}},
		{"kvstore-7.4.1.helm3.yaml", "cache", "../charts/kvstore", nil},
		{"kvstore-7.4.2.helm3.yaml", "cache", "../charts/kvstore", map[string]any{"image": map[string]any{"tag": "7.4.2"}}},
		{"edge-1.12.0.helm3.yaml", "edge", "../charts/edge", nil},
		{"twoversions-1.helm3.yaml", "web", "../charts/twoversions", nil},
		{"stateful-1.0.helm3.yaml", "st", "../charts/stateful", nil},
		{"configured-1.0.helm3.yaml", "cfg", "../charts/configured", nil},
		{"configured-2.0.helm3.yaml", "cfg", "../charts/configured", map[string]any{"image": map[string]any{"tag": "1.28"},
			"config": map[string]any{"greeting": "hello from 2.0"}, "apiKey": "key-2.0", "region": "eu-central-1"}},
		{"storefront-1.0.helm3.yaml", "front", "../charts/storefront", nil},
		{"storefront-1.1-corp.helm3.yaml", "front", "../charts/storefront", map[string]any{"image": map[string]any{"tag": "1.1"}, "clusterDomain": "corp.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ch, err := loader.Load(tt.chart)
			if err != nil {
				t.Fatal(err)
			}
			install := action.NewInstall(&action.Configuration{})
			install.DryRun, install.ClientOnly, install.Replace = true, true, true
			install.ReleaseName, install.Namespace = tt.release, "shop"
			install.KubeVersion = &chartutil.KubeVersion{Version: "v1.34.0", Major: "1", Minor: "34"}
			got := &bytes.Buffer{}
			install.PostRenderer = capture{got}
			if _, err := install.Run(ch, tt.values); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("inputs", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("inputs/%s is stale: run hack/capture-inputs.sh and review the golden diffs\n%s", tt.file, lineDiff(string(want), got.String()))
			}
		})
	}
}
