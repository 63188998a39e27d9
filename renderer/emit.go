package renderer

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// emitBlock writes the document n exactly as yaml.v3's encoder (indent 2, compact
// sequences, as kyaml configures it) would, for the plain trees helm-canary builds:
// block mappings and sequences of scalars, without comments, anchors, aliases, flow
// style or multi-line strings. It returns false, having written nothing, for any
// tree outside that, and the caller encodes it with yaml.v3.
//
// Why: the routing objects a release gets (a VirtualService and a DestinationRule
// per workload, more with extras) are built as trees, and yaml.v3's emitter, which
// goes through an event queue and re-analyses every scalar, cost about a third of a
// whole render. TestEmitMatchesEncoder holds every tree the renderer writes to
// byte-for-byte equality with the encoder.
func emitBlock(buf *bytes.Buffer, n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) != 1 || n.HeadComment != "" || n.LineComment != "" || n.FootComment != "" || n.Anchor != "" {
			return false
		}
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		return false
	}
	start := buf.Len()
	if !emitMapping(buf, n, 0, false) {
		buf.Truncate(start)
		return false
	}
	return true
}

// plainCollection reports whether a mapping or sequence node carries nothing that
// changes how the encoder writes it.
func plainCollection(n *yaml.Node, kind yaml.Kind, tag string) bool {
	return n.Kind == kind && n.Style == 0 && n.Anchor == "" && n.HeadComment == "" && n.LineComment == "" &&
		n.FootComment == "" && (n.Tag == "" || n.Tag == tag || n.Tag == "tag:yaml.org,2002:"+tag[2:])
}

// emitMapping writes a non-empty block mapping at indent; inline means the first
// key goes where the cursor is (after a sequence's "- ").
func emitMapping(buf *bytes.Buffer, m *yaml.Node, indent int, inline bool) bool {
	if !plainCollection(m, yaml.MappingNode, "!!map") || len(m.Content)%2 != 0 {
		return false
	}
	for i := 0; i < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if !plainKey(k) {
			return false
		}
		if i > 0 || !inline {
			writeIndent(buf, indent)
		}
		buf.WriteString(k.Value)
		buf.WriteByte(':')
		if !emitValue(buf, v, indent) {
			return false
		}
	}
	return true
}

// emitValue writes the value of a mapping entry whose key is at indent.
func emitValue(buf *bytes.Buffer, v *yaml.Node, indent int) bool {
	switch v.Kind {
	case yaml.ScalarNode:
		text, ok := scalarRepr(v)
		if !ok {
			return false
		}
		buf.WriteByte(' ')
		buf.WriteString(text)
		buf.WriteByte('\n')
		return true
	case yaml.MappingNode:
		if len(v.Content) == 0 {
			if !plainCollection(v, yaml.MappingNode, "!!map") {
				return false
			}
			buf.WriteString(" {}\n")
			return true
		}
		buf.WriteByte('\n')
		return emitMapping(buf, v, indent+2, false)
	case yaml.SequenceNode:
		if len(v.Content) == 0 {
			if !plainCollection(v, yaml.SequenceNode, "!!seq") {
				return false
			}
			buf.WriteString(" []\n")
			return true
		}
		buf.WriteByte('\n')
		return emitSequence(buf, v, indent) // compact: items at the key's indent
	}
	return false
}

// emitSequence writes a non-empty block sequence whose "- " are at indent.
func emitSequence(buf *bytes.Buffer, s *yaml.Node, indent int) bool {
	if !plainCollection(s, yaml.SequenceNode, "!!seq") {
		return false
	}
	for _, item := range s.Content {
		writeIndent(buf, indent)
		buf.WriteString("- ")
		switch item.Kind {
		case yaml.ScalarNode:
			text, ok := scalarRepr(item)
			if !ok {
				return false
			}
			buf.WriteString(text)
			buf.WriteByte('\n')
		case yaml.MappingNode:
			if len(item.Content) == 0 {
				if !plainCollection(item, yaml.MappingNode, "!!map") {
					return false
				}
				buf.WriteString("{}\n")
				continue
			}
			if !emitMapping(buf, item, indent+2, true) {
				return false
			}
		default:
			return false // a sequence in a sequence, an alias
		}
	}
	return true
}

const spaces = "                                                                "

func writeIndent(buf *bytes.Buffer, n int) {
	for n > len(spaces) {
		buf.WriteString(spaces)
		n -= len(spaces)
	}
	buf.WriteString(spaces[:n])
}

// plainKey reports whether a mapping key is a string the encoder writes plain as a
// simple key (at most 128 characters; longer keys get the "? " form).
func plainKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Style == 0 && k.Anchor == "" && k.HeadComment == "" && k.LineComment == "" &&
		k.FootComment == "" && isStrTag(k.Tag) && len(k.Value) <= 128 && plainString(k.Value)
}

func isStrTag(tag string) bool {
	return tag == "" || tag == "!!str" || tag == "tag:yaml.org,2002:str"
}

// plainString reports whether the encoder writes s plain and a reader takes it back
// as the same string: a letter, then letters, digits and . _ / - only, and no word
// YAML reads as a bool or null. Anything else goes through scalarRepr's slow path.
func plainString(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return false
		}
	}
	if len(s) <= 5 {
		switch strings.ToLower(s) {
		case "true", "false", "null", "y", "n", "yes", "no", "on", "off":
			return false
		}
	}
	return true
}

// scalarRepr is how the encoder writes a scalar as a block mapping value or a
// sequence item, when that is one line.
func scalarRepr(v *yaml.Node) (string, bool) {
	if v.Anchor != "" || v.HeadComment != "" || v.LineComment != "" || v.FootComment != "" {
		return "", false
	}
	if v.Style == 0 && plainString(v.Value) && (isStrTag(v.Tag)) {
		return v.Value, true
	}
	if v.Style == 0 && (v.Tag == "!!int" || v.Tag == "tag:yaml.org,2002:int") && isDecimal(v.Value) {
		return v.Value, true
	}
	return slowScalarRepr(v)
}

// isDecimal reports whether s is a decimal integer the way YAML writes one plain.
func isDecimal(s string) bool {
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	}
	if s == "" || len(s) > 18 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// scalarCache holds the encoder's one-line text for scalars outside the fast path
// ("8080" as a string, an image reference, a regular expression): release streams
// repeat them, and yaml.v3 is asked once per distinct scalar.
var scalarCache sync.Map

const scalarCacheMax = 1 << 14

var scalarCacheLen atomic.Int64

type scalarKey struct {
	value, tag string
	style      yaml.Style
}

// slowScalarRepr asks yaml.v3 how it writes the scalar, alone as a document: in
// block context a one-line scalar is written the same at the top level as as a
// mapping value or sequence item, since lines are never wrapped (the encoder's
// width is unlimited). Anything longer than one line is refused.
func slowScalarRepr(v *yaml.Node) (string, bool) {
	key := scalarKey{v.Value, v.Tag, v.Style}
	if r, ok := scalarCache.Load(key); ok {
		s := r.(string)
		return s, s != ""
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	err := enc.Encode(&yaml.Node{Kind: yaml.ScalarNode, Value: v.Value, Tag: v.Tag, Style: v.Style})
	if err == nil {
		err = enc.Close()
	}
	text := ""
	if out := buf.String(); err == nil && strings.HasSuffix(out, "\n") && strings.Count(out, "\n") == 1 && !strings.HasPrefix(out, "...") {
		text = strings.TrimSuffix(out, "\n")
	}
	if scalarCacheLen.Load() < scalarCacheMax {
		if _, loaded := scalarCache.LoadOrStore(key, text); !loaded {
			scalarCacheLen.Add(1)
		}
	}
	return text, text != ""
}
