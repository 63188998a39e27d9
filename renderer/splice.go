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
// node says they are, in a block layout or a one-line flow mapping ({app: x}). If
// any check fails (quoting, tabs, non-ASCII before the position...) the splicer
// reports failure and the caller re-encodes the node instead, so an unusual layout
// costs speed, never correctness. A line it adds ends as the line it is put before
// does, so a template written with CRLF line ends keeps them.
// TestSpliceMatchesEncode pins that both paths give the same objects.
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

// insertKey adds "key: value" as the first entry of a mapping: a line of its own in
// a block mapping, "key: value, " in a flow mapping.
func (s *splicer) insertKey(m *yaml.Node, key, value string) {
	if !s.ok || m == nil || m.Kind != yaml.MappingNode || field(m, key) != nil {
		s.ok = false
		return
	}
	if m.Style&yaml.FlowStyle != 0 {
		s.insertFlow(m, key+": "+value)
		return
	}
	if len(m.Content) == 0 {
		s.ok = false
		return
	}
	start, indent := s.keyLine(m.Content[0])
	if start < 0 {
		s.ok = false
		return
	}
	s.edits = append(s.edits, edit{at: start, text: strings.Repeat(" ", indent) + key + ": " + value + s.eol(start)})
}

// insertFlow puts entry ("key: value") first in a flow mapping: before its first
// key, or between the braces of {}.
func (s *splicer) insertFlow(m *yaml.Node, entry string) {
	if !flowSafe(entry) {
		s.ok = false
		return
	}
	if len(m.Content) == 0 {
		off := s.at(m.Line, m.Column)
		if off < 0 || off >= len(s.body) || s.body[off] != '{' {
			s.ok = false
			return
		}
		s.edits = append(s.edits, edit{at: off + 1, text: entry})
		return
	}
	off := s.keyStart(m.Content[0])
	if off < 0 {
		s.ok = false
		return
	}
	s.edits = append(s.edits, edit{at: off, text: entry + ", "})
}

// keyStart returns the offset of a scalar key's first character, checking that the
// bytes there start the key as written.
func (s *splicer) keyStart(k *yaml.Node) int {
	off := s.at(k.Line, k.Column)
	if off < 0 || k.Kind != yaml.ScalarNode {
		return -1
	}
	switch k.Style {
	case 0:
		if !bytes.HasPrefix(s.body[off:], []byte(k.Value)) {
			return -1
		}
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if off >= len(s.body) || (s.body[off] != '"' && s.body[off] != '\'') {
			return -1
		}
	default:
		return -1
	}
	return off
}

// flowSafe reports whether text (our own "key: value" entries) reads the same inside
// a flow mapping: no flow indicator or comment start outside a double-quoted value.
func flowSafe(text string) bool {
	if i := strings.Index(text, `: "`); i >= 0 && strings.HasSuffix(text, `"`) {
		text = text[:i+2]
	}
	return !strings.ContainsAny(text, ",[]{}#\n") && strings.Count(text, ": ") == 1
}

// eol is the line end of the line starting at off: what a line inserted before it
// ends with.
func (s *splicer) eol(off int) string {
	if i := bytes.IndexByte(s.body[off:], '\n'); i > 0 && s.body[off+i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
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

// setLabel sets a label in an object's metadata, adding the labels mapping when
// the object has none.
func (s *splicer) setLabel(meta *yaml.Node, key, value string) {
	if labels := field(meta, "labels"); labels != nil {
		s.setKey(labels, key, value)
		return
	}
	s.setNested(meta, "labels", [2]string{key, value})
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
	if !s.ok || m == nil || m.Kind != yaml.MappingNode {
		s.ok = false
		return
	}
	if m.Style&yaml.FlowStyle != 0 {
		s.setNestedFlow(m, parent, entries)
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
	pad, eol := strings.Repeat(" ", indent), s.eol(start)
	text := pad + parent + ":" + eol
	for _, e := range entries {
		text += pad + "  " + e[0] + ": " + e[1] + eol
	}
	s.edits = append(s.edits, edit{at: start, text: text})
}

// setNestedFlow is setNested for a flow mapping m without parent: "parent: {...}"
// goes in before the first entry that is not the name or namespace, or after the
// last one.
func (s *splicer) setNestedFlow(m *yaml.Node, parent string, entries [][2]string) {
	var inner []string
	for _, e := range entries {
		if !flowSafe(e[0] + ": " + e[1]) {
			s.ok = false
			return
		}
		inner = append(inner, e[0]+": "+e[1])
	}
	text := parent + ": {" + strings.Join(inner, ", ") + "}"
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i].Value; k != "name" && k != "namespace" {
			if off := s.keyStart(m.Content[i]); off >= 0 {
				s.edits = append(s.edits, edit{at: off, text: text + ", "})
				return
			}
			s.ok = false
			return
		}
	}
	end := -1
	if n := len(m.Content); n > 0 {
		end = s.scalarEnd(m.Content[n-1])
	}
	if end < 0 {
		s.ok = false
		return
	}
	s.edits = append(s.edits, edit{at: end, text: ", " + text})
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
	off := s.at(v.Line, v.Column)
	end := s.scalarEnd(v)
	if off < 0 || end < 0 || (v.Style != 0 && !quoted) {
		s.ok = false
		return
	}
	if s.inFlow(off) && !flowSafe("k: "+text) {
		s.ok = false
		return
	}
	s.edits = append(s.edits, edit{at: off, del: end - off, text: text})
}

// scalarEnd returns the offset just past a one-line scalar as written: plain, or
// double-quoted without escapes. It checks the bytes are the value and that what
// follows ends it (a blank, a line end, a comment, or a flow mapping's , or }).
func (s *splicer) scalarEnd(v *yaml.Node) int {
	if v == nil || v.Kind != yaml.ScalarNode {
		return -1
	}
	old := v.Value
	switch v.Style {
	case 0:
	case yaml.DoubleQuotedStyle:
		if strings.ContainsAny(v.Value, `"\\`) {
			return -1
		}
		old = `"` + v.Value + `"`
	default:
		return -1
	}
	off := s.at(v.Line, v.Column)
	end := off + len(old)
	if off < 0 || end > len(s.body) || string(s.body[off:end]) != old ||
		(end < len(s.body) && !strings.ContainsRune(" \t\r\n#,}]", rune(s.body[end]))) {
		return -1
	}
	return end
}

// inFlow reports whether off may be inside a flow collection on its line: an open
// brace or bracket before it that is not closed, or a quote that makes counting
// them unsure.
func (s *splicer) inFlow(off int) bool {
	start := bytes.LastIndexByte(s.body[:off], '\n') + 1
	depth := 0
	for _, c := range s.body[start:off] {
		switch c {
		case '"', '\'':
			return true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		}
	}
	return depth > 0
}

// scalarText is how the encoder writes a string: plain, or quoted when plain would
// read as another type ("10", "true").
func scalarText(v string) string {
	if plainString(v) {
		return v // what the encoder writes for it, without asking it
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		return strconv.Quote(v)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// deleteEntry removes a "key: scalar" entry from a mapping: its line from a block
// mapping, the entry and one comma next to it from a one-line flow mapping.
func (s *splicer) deleteEntry(m *yaml.Node, key string) {
	for i := 0; s.ok && i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Value != key {
			continue
		}
		if m.Style&yaml.FlowStyle != 0 {
			s.deleteFlowEntry(k, v)
			return
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

func (s *splicer) deleteFlowEntry(k, v *yaml.Node) {
	from, to := s.keyStart(k), s.scalarEnd(v)
	if from < 0 || to < 0 || k.Line != v.Line {
		s.ok = false
		return
	}
	isBlank := func(c byte) bool { return c == ' ' || c == '\t' }
	after := to
	for after < len(s.body) && isBlank(s.body[after]) {
		after++
	}
	if after < len(s.body) && s.body[after] == ',' { // "key: v, next": drop "key: v, "
		after++
		for after < len(s.body) && isBlank(s.body[after]) {
			after++
		}
		s.edits = append(s.edits, edit{at: from, del: after - from})
		return
	}
	before := from
	for before > 0 && isBlank(s.body[before-1]) {
		before--
	}
	if before > 0 && s.body[before-1] == ',' { // "prev, key: v}": drop ", key: v"
		before--
	} else {
		before = from // the only entry: {} is left
	}
	s.edits = append(s.edits, edit{at: before, del: to - before})
}

// apply returns prefix and the edited bytes, allocated once at their size, or false
// if any edit could not be placed.
func (s *splicer) apply(prefix []byte) ([]byte, bool) {
	if !s.ok {
		return nil, false
	}
	sort.SliceStable(s.edits, func(i, j int) bool { return s.edits[i].at < s.edits[j].at })
	size := len(prefix) + len(s.body) + 1
	for _, e := range s.edits {
		size += len(e.text) - e.del
	}
	out := make([]byte, 0, size)
	out = append(out, prefix...)
	pos := 0
	for _, e := range s.edits {
		if e.at < pos {
			return nil, false // overlapping edits: let the encoder do it
		}
		out = append(out, s.body[pos:e.at]...)
		out = append(out, e.text...)
		pos = e.at + e.del
	}
	out = append(out, s.body[pos:]...)
	if n := len(out); n > len(prefix) && out[n-1] != '\n' {
		out = append(out, '\n')
	}
	return out, true
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
