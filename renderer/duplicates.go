package renderer

import (
	"fmt"
	"strings"
)

// checkDuplicates refuses two documents for one object among the kinds the
// transformation reads: Kubernetes keeps one object per kind, namespace and name,
// so the copies would overwrite each other, and each would be canaried on its own.
// Each clash is reported once, with where its copies are, and the check is linear:
// documents are grouped by the cheap scan's kind and name, and only documents that
// share both are parsed for their namespace.
func (r *release) checkDuplicates() error {
	type key struct{ kind, ns, name string }
	byName := map[key][]*document{}
	var order []key
	for _, d := range r.docs {
		switch d.kind {
		case "Deployment", "Service", "HorizontalPodAutoscaler", "VirtualService", "DestinationRule":
		default:
			continue
		}
		if d.name == "" {
			if _, err := d.parse(); err != nil {
				return err
			}
		}
		k := key{d.kind, "", d.name}
		if byName[k] == nil {
			order = append(order, k)
		}
		byName[k] = append(byName[k], d)
	}
	for _, k := range order {
		docs := byName[k]
		if len(docs) < 2 {
			continue
		}
		byNS := map[key][]*document{}
		var nsOrder []key
		for _, d := range docs {
			n, err := d.parse()
			if err != nil {
				return err
			}
			if n == nil || metaOf(n).hook {
				continue // hooks are applied on their own, at their own time
			}
			nk := key{d.kind, r.namespaceOf(d.ns), d.name}
			if byNS[nk] == nil {
				nsOrder = append(nsOrder, nk)
			}
			byNS[nk] = append(byNS[nk], d)
		}
		for _, nk := range nsOrder {
			if same := byNS[nk]; len(same) > 1 {
				return fmt.Errorf("%s %s (namespace %s) is in the stream %d times (%s); Kubernetes keeps one object per kind, namespace and name, so the copies would overwrite each other: render it once",
					nk.kind, nk.name, nk.ns, len(same), where(same))
			}
		}
	}
	return nil
}

// where lists documents' positions (and templates), the first few of them.
func where(docs []*document) string {
	const show = 5
	var parts []string
	for i, d := range docs {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(docs)-show))
			break
		}
		p := fmt.Sprintf("document %d", d.index)
		if s := d.source(); s != "" {
			p += " (" + s + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
