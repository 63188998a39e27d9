package renderer

import (
	"bytes"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// splicer edits a document's original bytes at positions the parser reported,
// instead of re-encoding the document. Two wins: the Deployments keep the chart's
// exact formatting (a diff of the release shows only the lines helm-canary changed),
// and encoding, the most expensive part of a render, is skipped.
//
// Every edit checks that the bytes at the reported position are what the parsed
// node says they are, in a plain block layout. If any check fails (flow style,
// quoting, tabs, non-ASCII before the position...) the splicer reports failure and
// the caller re-encodes the node instead, so an unusual layout costs speed, never
// correctness. TestSpliceMatchesEncode pins that both paths give the same objects.
type splicer struct {
	body  []byte
	lines []int // byte offset of the start of each line (line 1 at index 0)
	edits []edit
	ok    bool
}

type edit struct {
	at, del int
	text    string
}

func newSplicer(body []byte) *splicer {
	s := &splicer{body: body, lines: []int{0}, ok: true}
	for i, b := range body {
		if b == '\n' && i+1 < len(body) {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// at returns the byte offset of a 1-based line and column, requiring the line up to
// that column to be ASCII so that columns and bytes agree.
func (s *splicer) at(line, col int) int {
	if line < 1 || line > len(s.lines) || col < 1 {
		return -1
	}
	start := s.lines[line-1]
	off := start + col - 1
	if off > len(s.body) {
		return -1
	}
	for _, b := range s.body[start:off] {
		if b >= 0x80 || b == '\n' {
			return -1
		}
	}
	return off
}

// lineIndent returns the offset of a block mapping key's line start, checking that
// only spaces precede the key.
func (s *splicer) keyLine(key *yaml.Node) (start, indent int) {
	off := s.at(key.Line, key.Column)
	if off < 0 || key.Kind != yaml.ScalarNode || key.Style != 0 {
		return -1, 0
	}
	start = s.lines[key.Line-1]
	for _, b := range s.body[start:off] {
		if b != ' ' {
			return -1, 0
		}
	}
	if !bytes.HasPrefix(s.body[off:], []byte(key.Value+":")) {
		return -1, 0
	}
	return start, off - start
}

// insertKey adds "key: value" as the first entry of a block mapping.
func (s *splicer) insertKey(m *yaml.Node, key, value string) {
	if !s.ok || m == nil || m.Kind != yaml.MappingNode || m.Style&yaml.FlowStyle != 0 || len(m.Content) == 0 || field(m, key) != nil {
		s.ok = false
		return
	}
	start, indent := s.keyLine(m.Content[0])
	if start < 0 {
		s.ok = false
		return
	}
	s.edits = append(s.edits, edit{at: start, text: strings.Repeat(" ", indent) + key + ": " + value + "\n"})
}

// setKey sets "key: value" in a block mapping: the value replaced where the key is
// there already (a stream helm-canary rendered before), else inserted first.
func (s *splicer) setKey(m *yaml.Node, key, value string) {
	if v := field(m, key); v != nil {
		s.replaceScalar(v, value)
		return
	}
	s.insertKey(m, key, value)
}

// setNested sets "key: value" entries (values written by scalarText) in the block
// mapping m holds under parent
// (metadata's annotations, say); without that mapping, "parent:" and the entries go
// in as a block right after m's name (and namespace), so the object still reads
// name first.
func (s *splicer) setNested(m *yaml.Node, parent string, entries ...[2]string) {
	if child := field(m, parent); child != nil {
		for _, e := range entries {
			if v := field(child, e[0]); v != nil {
				s.replace(v, e[1], true)
			} else {
				s.insertKey(child, e[0], e[1])
			}
		}
		return
	}
	if !s.ok || m == nil || m.Kind != yaml.MappingNode || m.Style&yaml.FlowStyle != 0 {
		s.ok = false
		return
	}
	at := -1
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i].Value; k != "name" && k != "namespace" {
			at = i
			break
		}
	}
	if at < 0 {
		s.ok = false // nothing after the name to insert before: let the encoder do it
		return
	}
	start, indent := s.keyLine(m.Content[at])
	if start < 0 {
		s.ok = false
		return
	}
	pad := strings.Repeat(" ", indent)
	text := pad + parent + ":\n"
	for _, e := range entries {
		text += pad + "  " + e[0] + ": " + e[1] + "\n"
	}
	s.edits = append(s.edits, edit{at: start, text: text})
}

// replaceScalar replaces a plain one-line scalar value.
func (s *splicer) replaceScalar(v *yaml.Node, text string) {
	s.replace(v, text, false)
}

// replace replaces a plain one-line scalar value, or with quoted also a
// double-quoted one without escapes (a value helm-canary wrote quoted before);
// text must then be a whole YAML scalar (scalarText), never raw data.
func (s *splicer) replace(v *yaml.Node, text string, quoted bool) {
	if !s.ok || v == nil || v.Kind != yaml.ScalarNode || (v.Style != 0 && !(quoted && v.Style == yaml.DoubleQuotedStyle)) {
		s.ok = false
		return
	}
	old := v.Value
	if v.Style == yaml.DoubleQuotedStyle {
		old = `"` + v.Value + `"`
		if strings.ContainsAny(v.Value, `"\\`) {
			s.ok = false
			return
		}
	}
	off := s.at(v.Line, v.Column)
	end := off + len(old)
	if off < 0 || end > len(s.body) || string(s.body[off:end]) != old ||
		(end < len(s.body) && !strings.ContainsRune(" \t\r\n#", rune(s.body[end]))) {
		s.ok = false
		return
	}
	s.edits = append(s.edits, edit{at: off, del: len(old), text: text})
}

// scalarText is how the encoder writes a string: plain, or quoted when plain would
// read as another type ("10", "true").
func scalarText(v string) string {
	out, err := yaml.Marshal(v)
	if err != nil {
		return strconv.Quote(v)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// deleteEntry removes a "key: scalar" line from a block mapping.
func (s *splicer) deleteEntry(m *yaml.Node, key string) {
	for i := 0; s.ok && i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Value != key {
			continue
		}
		start, _ := s.keyLine(k)
		if start < 0 || v.Kind != yaml.ScalarNode || v.Line != k.Line || v.Style != 0 {
			s.ok = false
			return
		}
		end := len(s.body)
		if k.Line < len(s.lines) {
			end = s.lines[k.Line]
		}
		s.edits = append(s.edits, edit{at: start, del: end - start})
		return
	}
}

// apply returns the edited bytes, or false if any edit could not be placed.
func (s *splicer) apply() ([]byte, bool) {
	if !s.ok {
		return nil, false
	}
	sort.SliceStable(s.edits, func(i, j int) bool { return s.edits[i].at < s.edits[j].at })
	var out bytes.Buffer
	out.Grow(len(s.body) + 128)
	pos := 0
	for _, e := range s.edits {
		if e.at < pos {
			return nil, false // overlapping edits: let the encoder do it
		}
		out.Write(s.body[pos:e.at])
		out.WriteString(e.text)
		pos = e.at + e.del
	}
	out.Write(s.body[pos:])
	if n := out.Len(); n > 0 && out.Bytes()[n-1] != '\n' {
		out.WriteByte('\n')
	}
	return out.Bytes(), true
}

// equalNode compares two YAML trees by value, ignoring styles and comments.
func equalNode(a, b *yaml.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind == yaml.DocumentNode && len(a.Content) == 1 {
		a = a.Content[0]
	}
	if b.Kind == yaml.DocumentNode && len(b.Content) == 1 {
		b = b.Content[0]
	}
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return false
	}
	switch a.Kind {
	case yaml.ScalarNode:
		return a.Value == b.Value && a.ShortTag() == b.ShortTag()
	case yaml.AliasNode:
		return equalNode(a.Alias, b.Alias)
	case yaml.MappingNode:
		for i := 0; i+1 < len(a.Content); i += 2 {
			if !equalNode(a.Content[i+1], field(b, a.Content[i].Value)) {
				return false
			}
		}
		return true
	}
	for i := range a.Content {
		if !equalNode(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

// sameTemplate reports whether the pinned production template is the rendered one
// plus the track label, in which case production can keep the rendered bytes.
func sameTemplate(pinned, rendered *yaml.Node, track string) bool {
	if pinned == nil || rendered == nil || pinned.Kind != yaml.MappingNode || rendered.Kind != yaml.MappingNode {
		return false
	}
	if len(pinned.Content) != len(rendered.Content) {
		return false
	}
	for i := 0; i+1 < len(pinned.Content); i += 2 {
		key, pv := pinned.Content[i].Value, pinned.Content[i+1]
		rv := field(rendered, key)
		if key != "metadata" {
			if !equalNode(pv, rv) {
				return false
			}
			continue
		}
		if rv == nil || pv.Kind != yaml.MappingNode || rv.Kind != yaml.MappingNode || len(pv.Content) != len(rv.Content) {
			return false
		}
		for j := 0; j+1 < len(pv.Content); j += 2 {
			mk := pv.Content[j].Value
			if mk != "labels" {
				if !equalNode(pv.Content[j+1], field(rv, mk)) {
					return false
				}
				continue
			}
			pl := stringMapNode(pv.Content[j+1])
			rl := stringMapNode(field(rv, "labels"))
			if pl[track] != TrackProduction {
				return false
			}
			delete(pl, track)
			delete(rl, track)
			if len(pl) != len(rl) {
				return false
			}
			for k, v := range rl {
				if pl[k] != v {
					return false
				}
			}
		}
	}
	return true
}
