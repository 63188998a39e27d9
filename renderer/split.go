package renderer

import (
	"bytes"
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// document is one YAML document of a stream, kept as the exact bytes it was read
// from so that untouched documents can be written back unchanged.
type document struct {
	index  int    // 1-based position in the input, for error messages
	raw    []byte // everything, from the separator line (if any) to the next one
	header []byte // the separator line and the comment/blank lines before the content
	body   []byte // raw without header

	kind string // top-level kind from a cheap scan; "" when the scan could not tell
	name string // metadata.name from a cheap scan; "" when it could not tell
	ns   string // metadata.namespace, known once parsed

	node    *yaml.RNode // the parsed body, nil until parse is called
	parsed  bool
	changed bool   // write the node re-encoded under the header
	out     []byte // when set, the whole document as it must be written

	// after holds new documents to write right after this one.
	after []*document
	// generated marks documents helm-canary made. Rendering a stream rendered before
	// makes some of its documents anew: such an input document is dropped, or
	// replacedBy the new one, which is then written in its place rather than where
	// it was made (moved), so that the order of the stream is kept too.
	generated, drop, moved bool
	replacedBy             *document
	// inlineStart is true when the document's "---" line has content after it.
	inlineStart bool
	// expanded is true when parse resolved aliases or merge keys: the tree's positions
	// no longer map onto the bytes one to one, so the document is never spliced.
	expanded bool
}

// splitDocuments cuts a stream at its "---" separator lines. It does not parse.
func splitDocuments(in []byte) []*document {
	var docs []*document
	start := 0
	lineStart := 0
	for lineStart < len(in) {
		end := bytes.IndexByte(in[lineStart:], '\n')
		next := len(in)
		if end >= 0 {
			next = lineStart + end + 1
		}
		if lineStart > start && startsDocument(in[lineStart:next]) {
			docs = append(docs, newDocument(in[start:lineStart]))
			start = lineStart
		}
		lineStart = next
	}
	if start < len(in) {
		docs = append(docs, newDocument(in[start:]))
	}
	for i, d := range docs {
		d.index = i + 1
	}
	return docs
}

// startsDocument reports whether a line starts a YAML document: "---" alone or
// followed by a blank, whatever comes after it ("--- !!map", "--- {kind: ...}"). At
// the start of a line such a marker always ends the document before it, even
// inside a block scalar.
func startsDocument(line []byte) bool {
	return bytes.HasPrefix(line, []byte("---")) && (len(line) == 3 || strings.IndexByte(" \t\r\n", line[3]) >= 0)
}

// isSeparator reports whether a line is a YAML document start marker with nothing
// after it but blanks or a comment.
func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := bytes.TrimRight(line[3:], " \t\r\n")
	return len(rest) == 0 || (len(line) > 3 && (line[3] == ' ' || line[3] == '\t') && bytes.HasPrefix(bytes.TrimLeft(rest, " \t"), []byte("#")))
}

func newDocument(raw []byte) *document {
	d := &document{raw: raw}
	// The header is the separator and the comment or blank lines that precede the
	// content: Helm 3's "# Source:" line lives there and must survive a re-encode.
	pos := 0
	for pos < len(raw) {
		end := bytes.IndexByte(raw[pos:], '\n')
		next := len(raw)
		if end >= 0 {
			next = pos + end + 1
		}
		line := bytes.TrimSpace(raw[pos:next])
		if !(len(line) == 0 || line[0] == '#' || (pos == 0 && isSeparator(raw[pos:next]))) {
			break
		}
		pos = next
	}
	// Content on the marker line ("--- !!map"): see classify.
	d.inlineStart = pos == 0 && startsDocument(raw)
	d.header, d.body = raw[:pos], raw[pos:]
	d.kind, d.name = scanKindAndName(d.body)
	return d
}

// empty reports whether the document holds no content, only comments or blanks.
func (d *document) empty() bool { return len(bytes.TrimSpace(d.body)) == 0 }

// source is the template file the document came from: Helm 3's "# Source:" comment,
// or Helm 4's filename annotation once parsed.
func (d *document) source() string {
	for _, line := range strings.Split(string(d.header), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source:"); ok {
			return strings.TrimSpace(s)
		}
	}
	if d.node != nil {
		return d.node.GetAnnotations()[helm4FilenameAnnotation]
	}
	return ""
}

// parse decodes the body once. A document that is not a single YAML mapping with a
// kind is an error naming its position and source.
func (d *document) parse() (*yaml.RNode, error) {
	if d.parsed {
		return d.node, nil
	}
	d.parsed = true
	if d.empty() {
		return nil, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(d.body))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		return nil, fmt.Errorf("%s is not valid YAML: %w; fix the template that renders it", d.describe(), err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%s holds more than one YAML document; separate documents with a line of ---", d.describe())
	}
	expanded, err := resolveNode(&n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.describe(), err)
	}
	d.expanded = expanded
	rn := yaml.NewRNode(&n)
	if rn.YNode().Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s is not a Kubernetes object (a YAML mapping with apiVersion and kind); fix the template that renders it", d.describe())
	}
	if rn.GetKind() == "" || rn.GetApiVersion() == "" {
		return nil, fmt.Errorf("%s has no kind or apiVersion; every document must be a Kubernetes object", d.describe())
	}
	d.node = rn
	d.kind = rn.GetKind()
	d.name = rn.GetName()
	d.ns = rn.GetNamespace()
	return rn, nil
}

// describe names the document for errors: kind/name when known, else its position.
func (d *document) describe() string {
	where := fmt.Sprintf("document %d", d.index)
	if s := d.source(); s != "" {
		where += " (" + s + ")"
	}
	if d.kind != "" && d.name != "" {
		return fmt.Sprintf("%s %s, %s", d.kind, d.name, where)
	}
	return where
}

// scanKindAndName reads the top-level kind and metadata.name of a block-style
// document without parsing it. It returns "" for either when it is not certain: the
// document is not plainly laid out (flow style, several kind lines, several
// metadata: or name: lines at their level, anchors, quoting it cannot read), or a
// quoted scalar runs over several lines, whose continuation lines can look like
// keys at any indent. Callers then parse the document, so a "" only costs time,
// while a wrong name would target or pin the wrong Deployment.
func scanKindAndName(body []byte) (kind, name string) {
	inMetadata := false
	metaIndent := -1
	kinds, metadatas, names := 0, 0, 0
	for len(body) > 0 {
		var line []byte
		line, body = nextLine(body)
		if len(line) == 0 {
			continue
		}
		if line[0] == '{' || line[0] == '[' {
			return "", ""
		}
		if opensQuote(line) {
			return "", ""
		}
		if line[0] != ' ' && line[0] != '\t' && line[0] != '#' {
			inMetadata = false
			if v, ok := bytes.CutPrefix(line, []byte("kind:")); ok {
				kinds++
				kind = plainScalar(v)
			} else if v, ok := bytes.CutPrefix(line, []byte("metadata:")); ok && len(bytes.TrimSpace(v)) == 0 {
				inMetadata = true
				metaIndent = -1
				metadatas++
			} else if ok {
				// metadata: {name: x, labels: {...}}, as flow-style generators write it.
				metadatas++
				if n, ok := flowName(v); ok {
					names++
					name = n
				}
			}
			continue
		}
		if !inMetadata {
			continue
		}
		trimmed := bytes.TrimLeft(line, " ")
		if len(trimmed) == 0 || trimmed[0] == '#' {
			continue
		}
		indent := len(line) - len(trimmed)
		if metaIndent < 0 {
			metaIndent = indent
		}
		if indent == metaIndent {
			if v, ok := bytes.CutPrefix(trimmed, []byte("name:")); ok {
				names++
				name = plainScalar(v)
			}
		}
	}
	if kinds != 1 {
		return "", ""
	}
	if metadatas != 1 || names != 1 {
		name = ""
	}
	return kind, name
}

// flowName reads name from a one-line flow mapping such as "{name: x, labels:
// {app: x}}" holding exactly one top-level name entry with a plain value. Anything
// it cannot be sure of is ok == false.
func flowName(v []byte) (name string, ok bool) {
	keys, values, ok := flowEntries(v)
	names := 0
	for i, k := range keys {
		if k == "name" {
			names++
			name = plainScalar([]byte(values[i]))
		}
	}
	if !ok || names != 1 || name == "" {
		return "", false
	}
	return name, true
}

// flowEntries splits a one-line flow mapping into its top-level keys and their
// values as written. ok is false for anything it cannot be sure of: quotes,
// anchors, aliases, tags, comments, a key without ": ", a mapping that goes on over
// the next lines.
func flowEntries(v []byte) (keys, values []string, ok bool) {
	s := strings.TrimSpace(string(v))
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || strings.ContainsAny(s, "\"'&*!|>%@`#?\t") {
		return nil, nil, false
	}
	body := s[1 : len(s)-1]
	var entries []string
	depth, start := 0, 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth < 0 {
				return nil, nil, false
			}
		case ',':
			if depth == 0 {
				entries = append(entries, body[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, nil, false
	}
	if last := strings.TrimSpace(body[start:]); last != "" || len(entries) > 0 {
		entries = append(entries, body[start:])
	}
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" && i == len(entries)-1 && i > 0 {
			break // a trailing comma
		}
		k, val, found := strings.Cut(e, ": ")
		if !found || !scanKey(k) {
			return nil, nil, false
		}
		keys, values = append(keys, k), append(values, strings.TrimSpace(val))
	}
	return keys, values, true
}

// scanKey reports whether k is a label-like key written plain: letters, digits and
// - . _ / only.
func scanKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._/", r)) {
			return false
		}
	}
	return true
}

// opensQuote reports whether a line leaves a quoted scalar open at its end: the
// scalar goes on over the next lines. A quote counts where YAML starts a quoted
// scalar (at the start of a key, a value or a sequence item), not inside a plain
// scalar such as don't.
func opensQuote(line []byte) bool {
	var quote byte
	prev := byte(' ')
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '"' && c == '\\':
			i++ // an escape: the next character is never the closing quote
		case quote == '"' && c == '"':
			quote = 0
		case quote == '\'' && c == '\'':
			if i+1 < len(line) && line[i+1] == '\'' {
				i++ // '' is an escaped quote
			} else {
				quote = 0
			}
		case quote != 0:
		case c == '#' && (prev == ' ' || prev == '\t'):
			return false // a comment runs to the end of the line
		case (c == '"' || c == '\'') && strings.IndexByte(" \t:-?,[{", prev) >= 0:
			quote = c
		}
		prev = c
	}
	return quote != 0
}

// nextLine cuts the first line (without its newline or carriage return) off body.
func nextLine(body []byte) (line, rest []byte) {
	end := bytes.IndexByte(body, '\n')
	if end < 0 {
		return bytes.TrimRight(body, "\r"), nil
	}
	return bytes.TrimRight(body[:end], "\r"), body[end+1:]
}

// plainScalar returns a simple one-line scalar value (optionally quoted, optionally
// followed by a comment), or "" when the value needs a real parser.
func plainScalar(v []byte) string {
	s := strings.TrimSpace(string(v))
	if i := strings.Index(s, " #"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		s = s[1 : len(s)-1]
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return ""
		}
	}
	return s
}

// encodeNode encodes one document body. Each document gets its own yaml encoder:
// an encoder's event queue only grows, so one encoder for a whole stream holds every
// document it ever wrote (hundreds of megabytes for a large release).
func encodeNode(buf *bytes.Buffer, node *yaml.RNode) error {
	start := buf.Len()
	if emitBlock(buf, node.Document()) {
		if verifyEmit != nil {
			verifyEmit(node, buf.Bytes()[start:])
		}
		return nil
	}
	enc := yaml.NewEncoder(buf)
	if err := enc.Encode(node.Document()); err != nil {
		return fmt.Errorf("encoding %s %s: %w", node.GetKind(), node.GetName(), err)
	}
	return enc.Close()
}

// verifyEmit, when set (by tests), sees every document emitBlock wrote.
var verifyEmit func(node *yaml.RNode, emitted []byte)

// scanSelector reads a Service's spec.selector from a plainly laid out block-style
// document without parsing it. ok is false whenever the layout is anything else, and
// the caller then parses.
func scanSelector(body []byte) (selector map[string]string, ok bool) {
	const (
		outside = iota
		inSpec
		inSelector
	)
	state := outside
	specIndent, selIndent := -1, -1
	found := false
	for len(body) > 0 {
		var line []byte
		line, body = nextLine(body)
		trimmed := bytes.TrimLeft(line, " ")
		if len(trimmed) == 0 || trimmed[0] == '#' {
			continue
		}
		if bytes.IndexByte(line, '\t') >= 0 {
			return nil, false
		}
		indent := len(line) - len(trimmed)
		if indent == 0 {
			if state == inSelector {
				return selector, true
			}
			state = outside
			if k, v, isKey := scanEntry(trimmed); isKey && k == "spec" {
				if v != "" {
					return nil, false // flow style
				}
				state, specIndent = inSpec, -1
			}
			continue
		}
		switch state {
		case inSpec:
			if specIndent < 0 {
				specIndent = indent
			}
			if indent == specIndent && !bytes.HasPrefix(trimmed, []byte("- ")) {
				k, v, isKey := scanEntry(trimmed)
				if !isKey {
					return nil, false
				}
				if k == "selector" {
					if found {
						return nil, false
					}
					if v != "" {
						// selector: {app: x}, as flow-style generators write it.
						keys, values, ok := flowEntries([]byte(v))
						if !ok {
							return nil, false
						}
						selector = map[string]string{}
						for i, k := range keys {
							if selector[k] = plainScalar([]byte(values[i])); selector[k] == "" {
								return nil, false
							}
						}
						found = true
						continue
					}
					found, state, selIndent, selector = true, inSelector, -1, map[string]string{}
				}
			}
		case inSelector:
			if indent <= specIndent {
				state = inSpec
				if k, _, isKey := scanEntry(trimmed); !isKey || k == "selector" {
					return nil, false
				}
				continue
			}
			if selIndent < 0 {
				selIndent = indent
			}
			k, v, isKey := scanEntry(trimmed)
			if v = plainScalar([]byte(v)); indent != selIndent || !isKey || v == "" {
				return nil, false
			}
			selector[k] = v
		}
	}
	return selector, found || state != inSelector
}

// scanEntry splits a "key: value" line with a plain key; value is the raw rest of
// the line. isKey is false for anything a real parser would be needed for.
func scanEntry(line []byte) (key, value string, isKey bool) {
	i := bytes.Index(line, []byte(":"))
	if i <= 0 || (i+1 < len(line) && line[i+1] != ' ') {
		return "", "", false
	}
	key = string(line[:i])
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._/", r)) {
			return "", "", false
		}
	}
	return key, strings.TrimSpace(string(line[i+1:])), true
}

// resolveNode makes a parsed document plain: every alias becomes a copy of its
// anchored node, and every merge key ("<<: *defaults") becomes the entries it
// merges (keys written in the mapping win, then the merged mappings in order), so
// that labels and selectors read through aliases are read right rather than as
// empty. A key written twice in one mapping is an error: Kubernetes would keep one
// of them, and which one is not what the chart author can see. It reports whether
// anything was resolved.
func resolveNode(n *yaml.Node) (bool, error) {
	changed := false
	var walk func(n *yaml.Node, depth int) error
	walk = func(n *yaml.Node, depth int) error {
		if depth > 1000 {
			return fmt.Errorf("nesting deeper than 1000 levels")
		}
		for i, c := range n.Content {
			if c.Kind == yaml.AliasNode {
				if c.Alias == nil {
					return fmt.Errorf("line %d: alias *%s has no anchor", c.Line, c.Value)
				}
				n.Content[i] = copyResolved(c.Alias)
				changed = true
			}
			if n.Content[i].Anchor != "" {
				n.Content[i].Anchor = ""
				changed = true
			}
		}
		if n.Kind == yaml.MappingNode {
			merged, err := mergeKeys(n)
			if err != nil {
				return err
			}
			changed = changed || merged
			if err := checkDuplicateKeys(n); err != nil {
				return err
			}
		}
		for _, c := range n.Content {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Anchor != "" {
		n.Anchor, changed = "", true
	}
	return changed, walk(n, 0)
}

// copyResolved deep-copies an anchored node, following the aliases inside it.
func copyResolved(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	c := *n
	c.Anchor = ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, x := range n.Content {
		c.Content[i] = copyResolved(x)
	}
	return &c
}

// mergeKeys replaces the merge keys of a mapping by the entries they merge.
func mergeKeys(m *yaml.Node) (bool, error) {
	has := false
	for i := 0; i+1 < len(m.Content); i += 2 {
		if isMergeKey(m.Content[i]) {
			has = true
		}
	}
	if !has {
		return false, nil
	}
	explicit := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if !isMergeKey(m.Content[i]) {
			explicit[m.Content[i].Value] = true
		}
	}
	var out []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if !isMergeKey(k) {
			out = append(out, k, v)
			continue
		}
		sources := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			sources = v.Content
		}
		for _, src := range sources {
			src = copyResolved(src)
			if src.Kind != yaml.MappingNode {
				return false, fmt.Errorf("line %d: a merge key (<<) takes a mapping or a list of mappings", k.Line)
			}
			if _, err := mergeKeys(src); err != nil {
				return false, err
			}
			for j := 0; j+1 < len(src.Content); j += 2 {
				key := src.Content[j].Value
				if explicit[key] {
					continue
				}
				explicit[key] = true // the first merged mapping wins over later ones
				out = append(out, src.Content[j], src.Content[j+1])
			}
		}
	}
	m.Content = out
	return true, nil
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "!!merge" || k.Tag == "tag:yaml.org,2002:merge" || k.Style == 0)
}

// checkDuplicateKeys refuses a mapping with a key written twice.
func checkDuplicateKeys(m *yaml.Node) error {
	n := len(m.Content) / 2
	if n < 2 {
		return nil
	}
	if n <= 16 {
		for i := 0; i+1 < len(m.Content); i += 2 {
			for j := i + 2; j+1 < len(m.Content); j += 2 {
				if m.Content[i].Value == m.Content[j].Value && m.Content[i].Kind == yaml.ScalarNode && m.Content[j].Kind == yaml.ScalarNode {
					return duplicateKey(m.Content[i], m.Content[j])
				}
			}
		}
		return nil
	}
	seen := make(map[string]*yaml.Node, n)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		if first, ok := seen[k.Value]; ok {
			return duplicateKey(first, k)
		}
		seen[k.Value] = k
	}
	return nil
}

func duplicateKey(first, again *yaml.Node) error {
	return fmt.Errorf("key %q is written twice in one mapping (lines %d and %d); Kubernetes would keep only one of them: remove the other from the template", first.Value, first.Line, again.Line)
}
