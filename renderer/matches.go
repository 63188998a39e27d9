package renderer

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// errNoRequest is the conjunction of two match requests that no request satisfies
// (uri exact /a and uri exact /b): the pair is dropped, not refused.
var errNoRequest = errors.New("no request satisfies both")

// mergeMatches ANDs a route's own match list with extra conditions (a workload's
// match rules, the sticky cookie, a user tag): each (own, extra) pair becomes one
// match request that holds exactly the requests both hold, written over a copy of
// the own request so the chart's layout stays. A pair no request satisfies is left
// out; when every pair is, the result is empty and the caller must drop the route
// (an empty match list would match everything). Where Istio has no way to say both
// (two different regexes on one field), it is an error.
func mergeMatches(own *yaml.Node, extra []*networking.HTTPMatchRequest) (*yaml.Node, error) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq}
	if own == nil || len(own.Content) == 0 {
		for _, e := range extra {
			en, err := toNode(e)
			if err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, en.YNode())
		}
		return seq, nil
	}
	for i, o := range own.Content {
		om, err := matchOf(o)
		if err != nil {
			return nil, fmt.Errorf("match[%d]: %w", i, err)
		}
		for j, e := range extra {
			both, err := intersectMatch(om, e)
			if errors.Is(err, errNoRequest) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("its match[%d] and the added match[%d] %s: %w", i, j, compact(e), err)
			}
			n, err := overlay(o, both)
			if err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, n)
		}
	}
	return seq, nil
}

// matchOf reads a chart's match request with Istio's own decoder.
func matchOf(n *yaml.Node) (*networking.HTTPMatchRequest, error) {
	js, err := yaml.NewRNode(n).MarshalJSON()
	if err != nil {
		return nil, err
	}
	var m networking.HTTPMatchRequest
	if err := protojson.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("not an Istio HTTPMatchRequest: %w", err)
	}
	return &m, nil
}

func compact(m proto.Message) string {
	b, err := protojson.Marshal(m)
	if err != nil {
		return "?"
	}
	// protojson adds random spaces to discourage byte comparisons; one line is enough.
	return strings.Join(strings.Fields(string(b)), " ")
}

// overlay writes the conjunction over a copy of the own request: fields keep their
// place, map entries (headers...) theirs, and only what narrowed or was added
// changes.
func overlay(own *yaml.Node, both *networking.HTTPMatchRequest) (*yaml.Node, error) {
	bn, err := toNode(both)
	if err != nil {
		return nil, err
	}
	b := bn.YNode()
	m := yaml.CopyYNode(own)
	for i := 0; i < len(m.Content); i += 2 {
		if strings.Contains(m.Content[i].Value, "_") {
			return b, nil // snake_case keys: the canonical form, not two spellings of a field
		}
	}
	for i := 0; i+1 < len(b.Content); i += 2 {
		key, val := b.Content[i].Value, b.Content[i+1]
		existing := field(m, key)
		if existing != nil && existing.Kind == yaml.MappingNode && (key == "headers" || key == "queryParams" || key == "withoutHeaders" || key == "sourceLabels") {
			for j := 0; j+1 < len(val.Content); j += 2 {
				setField(existing, ownKey(existing, val.Content[j].Value), val.Content[j+1])
			}
			continue
		}
		setField(m, key, val)
	}
	return m, nil
}

// ownKey is the spelling the own mapping uses for a header name (names are
// case-insensitive).
func ownKey(m *yaml.Node, name string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, name) {
			return m.Content[i].Value
		}
	}
	return name
}

// intersectMatch is the match request that holds exactly when both hold.
func intersectMatch(a, b *networking.HTTPMatchRequest) (*networking.HTTPMatchRequest, error) {
	out := proto.Clone(a).(*networking.HTTPMatchRequest)
	if out.Name == "" {
		out.Name = b.Name
	}
	if out.StatPrefix == "" {
		out.StatPrefix = b.StatPrefix
	}
	var err error
	// ignoreUriCase belongs to the uri of the request that sets it.
	switch {
	case a.Uri == nil:
		out.Uri, out.IgnoreUriCase = b.Uri, b.IgnoreUriCase
	case b.Uri == nil:
	case a.IgnoreUriCase != b.IgnoreUriCase:
		return nil, fmt.Errorf("uri: one match ignores the uri's case and the other does not; Istio has one ignoreUriCase for both")
	default:
		if out.Uri, err = intersectString("uri", a.Uri, b.Uri, a.IgnoreUriCase); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name     string
		dst      **networking.StringMatch
		one, two *networking.StringMatch
	}{
		{"scheme", &out.Scheme, a.Scheme, b.Scheme},
		{"method", &out.Method, a.Method, b.Method},
		{"authority", &out.Authority, a.Authority, b.Authority},
	} {
		if *f.dst, err = intersectString(f.name, f.one, f.two, false); err != nil {
			return nil, err
		}
	}
	if out.Headers, err = intersectMap("headers", a.Headers, b.Headers, true); err != nil {
		return nil, err
	}
	if out.QueryParams, err = intersectMap("queryParams", a.QueryParams, b.QueryParams, false); err != nil {
		return nil, err
	}
	if out.WithoutHeaders, err = unionWithout(a.WithoutHeaders, b.WithoutHeaders); err != nil {
		return nil, err
	}
	switch {
	case a.Port == 0:
		out.Port = b.Port
	case b.Port != 0 && a.Port != b.Port:
		return nil, errNoRequest
	}
	switch {
	case a.SourceNamespace == "":
		out.SourceNamespace = b.SourceNamespace
	case b.SourceNamespace != "" && a.SourceNamespace != b.SourceNamespace:
		return nil, errNoRequest
	}
	for k, v := range b.SourceLabels {
		if have, ok := out.SourceLabels[k]; ok && have != v {
			return nil, errNoRequest
		}
		if out.SourceLabels == nil {
			out.SourceLabels = map[string]string{}
		}
		out.SourceLabels[k] = v
	}
	if len(a.Gateways) > 0 && len(b.Gateways) > 0 {
		out.Gateways = nil
		for _, g := range a.Gateways {
			if slices.Contains(b.Gateways, g) {
				out.Gateways = append(out.Gateways, g)
			}
		}
		if len(out.Gateways) == 0 {
			return nil, errNoRequest
		}
	} else if len(a.Gateways) == 0 {
		out.Gateways = b.Gateways
	}
	return out, nil
}

// intersectMap ANDs per-name conditions (headers, query parameters); header names
// are case-insensitive.
func intersectMap(what string, a, b map[string]*networking.StringMatch, foldCase bool) (map[string]*networking.StringMatch, error) {
	if len(b) == 0 {
		return a, nil
	}
	out := make(map[string]*networking.StringMatch, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for _, k := range sortedKeys(b) {
		key := k
		for have := range a {
			if have == k || foldCase && strings.EqualFold(have, k) {
				key = have
			}
		}
		both, err := intersectString(what+" "+k, out[key], b[k], false)
		if err != nil {
			return nil, err
		}
		out[key] = both
	}
	return out, nil
}

// unionWithout ANDs two sets of withoutHeaders: not A and not B on one header is
// "not (A or B)", which one StringMatch says only when one of them covers the other.
func unionWithout(a, b map[string]*networking.StringMatch) (map[string]*networking.StringMatch, error) {
	if len(b) == 0 {
		return a, nil
	}
	out := make(map[string]*networking.StringMatch, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for _, k := range sortedKeys(b) {
		key := k
		for have := range a {
			if strings.EqualFold(have, k) {
				key = have
			}
		}
		have, ok := out[key]
		switch {
		case !ok || covers(b[k], have):
			out[key] = b[k]
		case covers(have, b[k]):
		default:
			return nil, fmt.Errorf("withoutHeaders %s: %s and %s cannot be excluded with one Istio condition", k, describe(have), describe(b[k]))
		}
	}
	return out, nil
}

// covers reports whether a matches every value b matches.
func covers(a, b *networking.StringMatch) bool {
	switch {
	case a.GetMatchType() == nil:
		return true // presence
	case b.GetMatchType() == nil:
		return false
	case proto.Equal(a, b):
		return true
	case isPrefix(a) && isExact(b):
		return strings.HasPrefix(b.GetExact(), a.GetPrefix())
	case isPrefix(a) && isPrefix(b):
		return strings.HasPrefix(b.GetPrefix(), a.GetPrefix())
	}
	return false
}

func isExact(m *networking.StringMatch) bool {
	_, ok := m.GetMatchType().(*networking.StringMatch_Exact)
	return ok
}

func isPrefix(m *networking.StringMatch) bool {
	_, ok := m.GetMatchType().(*networking.StringMatch_Prefix)
	return ok
}

// intersectString is the StringMatch that holds exactly when both hold; a nil one
// (or one without a match type: header presence) holds for anything. Istio matches
// exact and prefix case-insensitively on a uri with ignoreUriCase, and regexes (RE2)
// against the whole value.
func intersectString(what string, a, b *networking.StringMatch, foldCase bool) (*networking.StringMatch, error) {
	switch {
	case a == nil:
		return b, nil
	case b == nil, b.GetMatchType() == nil:
		return a, nil
	case a.GetMatchType() == nil:
		return b, nil
	}
	norm := func(s string) string {
		if foldCase {
			return strings.ToLower(s)
		}
		return s
	}
	exactA, exactB := isExact(a), isExact(b)
	prefixA, prefixB := isPrefix(a), isPrefix(b)
	switch {
	case exactA && exactB:
		if norm(a.GetExact()) == norm(b.GetExact()) {
			return a, nil
		}
	case exactA && prefixB:
		if strings.HasPrefix(norm(a.GetExact()), norm(b.GetPrefix())) {
			return a, nil
		}
	case prefixA && exactB:
		if strings.HasPrefix(norm(b.GetExact()), norm(a.GetPrefix())) {
			return b, nil
		}
	case prefixA && prefixB:
		pa, pb := norm(a.GetPrefix()), norm(b.GetPrefix())
		if strings.HasPrefix(pa, pb) {
			return a, nil
		}
		if strings.HasPrefix(pb, pa) {
			return b, nil
		}
	case proto.Equal(a, b):
		return a, nil
	case exactA && !foldCase, exactB && !foldCase:
		exact, re := a, b
		if exactB {
			exact, re = b, a
		}
		rx, err := regexp.Compile(`^(?:` + re.GetRegex() + `)$`)
		if err != nil {
			return nil, fmt.Errorf("%s: regex %q: %w", what, re.GetRegex(), err)
		}
		if rx.MatchString(exact.GetExact()) {
			return exact, nil
		}
	default:
		return nil, fmt.Errorf("%s: %s and %s cannot both be required in one Istio match (Istio takes one condition per field); make one of them an exact value or a prefix within the other", what, describe(a), describe(b))
	}
	return nil, errNoRequest
}

func describe(m *networking.StringMatch) string {
	switch t := m.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return fmt.Sprintf("exact %q", t.Exact)
	case *networking.StringMatch_Prefix:
		return fmt.Sprintf("prefix %q", t.Prefix)
	case *networking.StringMatch_Regex:
		return fmt.Sprintf("regex %q", t.Regex)
	}
	return "present"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
