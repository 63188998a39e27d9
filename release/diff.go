package release

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"sigs.k8s.io/yaml"

	"github.com/helm-canary/helm-canary/canaried"
)

// diffManifests shows, object by object, how the new manifest differs from the old
// one: what --dry-run prints. Both sides are printed the same way (keys sorted), so
// that only content differs, and Secret values are never printed.
func diffManifests(old, new, title string) string {
	before, after := objectsByKey(old), objectsByKey(new)
	keys := slices.Sorted(maps.Keys(before))
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "=== %s\n", title)
	changed := 0
	for _, k := range keys {
		a, z := before[k], after[k]
		if a != nil && z != nil && a.Kind == "Secret" {
			redactSecret(a.Fields, z.Fields)
		} else if a != nil && a.Kind == "Secret" {
			redactSecret(a.Fields, nil)
		} else if z != nil && z.Kind == "Secret" {
			redactSecret(nil, z.Fields)
		}
		at, zt := objectText(a), objectText(z)
		if at == zt {
			continue
		}
		changed++
		switch {
		case a == nil:
			fmt.Fprintf(&b, "+++ %s (new)\n", k)
		case z == nil:
			fmt.Fprintf(&b, "--- %s (removed)\n", k)
		default:
			fmt.Fprintf(&b, "~~~ %s\n", k)
		}
		d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(at), B: difflib.SplitLines(zt), Context: 3,
		})
		b.WriteString(d)
	}
	if changed == 0 {
		b.WriteString("no changes\n")
	}
	return b.String()
}

// objectsByKey indexes a manifest's objects as "Kind namespace/name"; the last one
// of a key wins, as it does for the renderer.
func objectsByKey(manifest string) map[string]*canaried.Object {
	out := map[string]*canaried.Object{}
	m, err := canaried.Read([]byte(manifest), "")
	if err != nil {
		return out
	}
	for i, o := range m.Objects {
		out[fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)] = &m.Objects[i]
	}
	return out
}

func objectText(o *canaried.Object) string {
	if o == nil {
		return ""
	}
	out, err := yaml.Marshal(o.Fields)
	if err != nil {
		return fmt.Sprintf("(%s %s cannot be printed: %v)\n", o.Kind, o.Name, err)
	}
	return string(out)
}

// Secret values are replaced by these, as `helm upgrade --dry-run --hide-secret`
// hides them; the diff still shows which keys come, go or change.
const (
	redacted        = "(redacted)"
	redactedChanged = "(redacted, changed)"
)

// redactSecret replaces the values of an old and a new Secret (either may be nil)
// in place, marking the new values that differ from the old ones.
func redactSecret(old, new map[string]any) {
	for _, field := range []string{"data", "stringData"} {
		o, _ := old[field].(map[string]any)
		n, _ := new[field].(map[string]any)
		for k, v := range n {
			if ov, ok := o[k]; ok && !reflect.DeepEqual(ov, v) {
				n[k] = redactedChanged
			} else {
				n[k] = redacted
			}
		}
		for k := range o {
			o[k] = redacted
		}
	}
}
