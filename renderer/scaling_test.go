package renderer

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/helm-canary/helm-canary/internal/benchstream"
)

// cost renders in once and returns the allocations and bytes allocated: counts,
// not wall time, so the test is stable on a loaded machine.
func cost(t *testing.T, in []byte, opts Options) (allocs, bytes uint64, err error) {
	t.Helper()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Render(in, opts)
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs, after.TotalAlloc - before.TotalAlloc, err
}

// TestRenderScalesLinearly: 4 times the input costs at most about 4 times the
// allocations and bytes, on streams shaped to find quadratic paths: the benchmark
// release, the same Service and Deployment repeated (refused, once), one Service
// selecting many Deployments (a warning listing them), many copies of one
// ConfigMap, and many workloads with user percentages.
func TestRenderScalesLinearly(t *testing.T) {
	if testing.Short() {
		t.Skip("renders a few thousand documents")
	}
	const n = 300
	users := func(k int) Options {
		o := Options{Stage: mustStage(t, "10"), PerWorkload: map[string]WorkloadOptions{}}
		for i := 1; i <= k; i++ {
			o.PerWorkload[benchstream.Name(i)] = WorkloadOptions{UserPercent: &UserPercent{Header: "x-user-id"},
				Sticky: &Sticky{Cookie: "cv"}}
		}
		return o
	}
	for _, c := range []struct {
		name    string
		stream  func(k int) []byte
		opts    func(k int) Options
		wantErr bool
	}{
		{"benchmark release", benchstream.Bytes, func(int) Options { return Options{Stage: mustStage(t, "10")} }, false},
		{"duplicated documents", func(k int) []byte { return []byte(strings.Repeat(appAt("2.0"), k)) },
			func(int) Options { return Options{Stage: mustStage(t, "10")} }, true},
		{"one Service, many Deployments", func(k int) []byte {
			var b strings.Builder
			b.WriteString(strings.SplitAfter(appAt("2.0"), "targetPort: http\n")[0])
			deployment := "---" + strings.SplitAfterN(appAt("2.0"), "---", 3)[2]
			for i := 0; i < k; i++ {
				b.WriteString(strings.Replace(deployment, "name: cart\n", fmt.Sprintf("name: cart-%d\n", i), 1))
			}
			return []byte(b.String())
		}, func(int) Options { return Options{Stage: mustStage(t, "10")} }, false},
		{"repeated ConfigMaps", func(k int) []byte {
			return []byte(appAt("2.0") + strings.Repeat("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n", 3*k))
		}, func(int) Options { return Options{Stage: mustStage(t, "10")} }, false},
		{"user percentages", benchstream.Bytes, users, false},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "-"), func(t *testing.T) {
			a1, b1, err1 := cost(t, c.stream(n), c.opts(n))
			a4, b4, err4 := cost(t, c.stream(4*n), c.opts(4*n))
			if (err1 != nil) != c.wantErr || (err4 != nil) != c.wantErr {
				t.Fatalf("errors %v, %v; want an error: %v", err1, err4, c.wantErr)
			}
			ra, rb := float64(a4)/float64(a1), float64(b4)/float64(b1)
			t.Logf("N=%d: %d allocs, %d bytes; 4N: %d allocs (%.2fx), %d bytes (%.2fx)", n, a1, b1, a4, ra, b4, rb)
			if ra > 5 || rb > 5 {
				t.Errorf("4x the input costs %.2fx the allocations and %.2fx the bytes: not linear", ra, rb)
			}
		})
	}
}
