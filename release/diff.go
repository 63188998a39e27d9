package release

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"sigs.k8s.io/kustomize/kyaml/kio"
)

// diffManifests shows, object by object, how the new manifest differs from the old
// one: what --dry-run prints.
func diffManifests(old, new, title string) string {
	before, after := objectsByKey(old), objectsByKey(new)
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var b strings.Builder
	fmt.Fprintf(&b, "=== %s\n", title)
	changed := 0
	for _, k := range sorted {
		a, z := before[k], after[k]
		if a == z {
			continue
		}
		changed++
		switch {
		case a == "":
			fmt.Fprintf(&b, "+++ %s (new)\n", k)
		case z == "":
			fmt.Fprintf(&b, "--- %s (removed)\n", k)
		default:
			fmt.Fprintf(&b, "~~~ %s\n", k)
		}
		d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(a), B: difflib.SplitLines(z), Context: 3,
		})
		b.WriteString(d)
	}
	if changed == 0 {
		b.WriteString("no changes\n")
	}
	return b.String()
}

// objectsByKey indexes a manifest's objects as "Kind namespace/name" -> YAML.
func objectsByKey(manifest string) map[string]string {
	out := map[string]string{}
	nodes, err := (&kio.ByteReader{Reader: strings.NewReader(manifest), OmitReaderAnnotations: true}).Read()
	if err != nil {
		return out
	}
	for _, n := range nodes {
		key := fmt.Sprintf("%s %s/%s", n.GetKind(), n.GetNamespace(), n.GetName())
		s, err := n.String()
		if err != nil {
			continue
		}
		out[key] = s
	}
	return out
}
