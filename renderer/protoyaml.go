package renderer

import (
	"encoding/base64"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// protoNode converts an istio.io/api message to a block-style YAML node with the
// field names and value forms of the protobuf JSON mapping (what Istio's CRDs
// expect), without the detour through JSON text and a YAML parser: a release with
// thousands of workloads builds thousands of these. Well-known types (Duration,
// wrappers, Struct...) have special JSON forms, so those few go through protojson.
// TestProtoNodeMatchesJSON pins the equivalence.
func protoNode(m proto.Message) (*yaml.RNode, error) {
	n, err := messageNode(m.ProtoReflect())
	if err != nil {
		return nil, err
	}
	return yaml.NewRNode(n), nil
}

func messageNode(m protoreflect.Message) (*yaml.Node, error) {
	if strings.HasPrefix(string(m.Descriptor().FullName()), "google.protobuf.") {
		return wellKnownNode(m.Interface())
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		v, err := fieldNode(fd, m.Get(fd))
		if err != nil {
			return nil, err
		}
		out.Content = append(out.Content, stringNode(fd.JSONName()), v)
	}
	return out, nil
}

func fieldNode(fd protoreflect.FieldDescriptor, v protoreflect.Value) (*yaml.Node, error) {
	switch {
	case fd.IsList():
		l := v.List()
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq}
		for i := 0; i < l.Len(); i++ {
			n, err := singularNode(fd, l.Get(i))
			if err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, n)
		}
		return seq, nil
	case fd.IsMap():
		var keys []protoreflect.MapKey
		v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			keys = append(keys, k)
			return true
		})
		// protojson sorts map keys too, so output is stable.
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}
		for _, k := range keys {
			n, err := singularNode(fd.MapValue(), v.Map().Get(k))
			if err != nil {
				return nil, err
			}
			m.Content = append(m.Content, stringNode(k.String()), n)
		}
		return m, nil
	default:
		return singularNode(fd, v)
	}
}

func singularNode(fd protoreflect.FieldDescriptor, v protoreflect.Value) (*yaml.Node, error) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageNode(v.Message())
	case protoreflect.StringKind:
		return stringNode(v.String()), nil
	case protoreflect.BoolKind:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagBool, Value: strconv.FormatBool(v.Bool())}, nil
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return stringNode(string(ev.Name())), nil
		}
		return intScalar(strconv.FormatInt(int64(v.Enum()), 10)), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return intScalar(strconv.FormatInt(v.Int(), 10)), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return intScalar(strconv.FormatUint(v.Uint(), 10)), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		// The JSON mapping writes 64-bit integers as strings.
		return stringNode(strconv.FormatInt(v.Int(), 10)), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return stringNode(strconv.FormatUint(v.Uint(), 10)), nil
	case protoreflect.FloatKind:
		return floatNode(strconv.FormatFloat(v.Float(), 'g', -1, 32)), nil
	case protoreflect.DoubleKind:
		return floatNode(strconv.FormatFloat(v.Float(), 'g', -1, 64)), nil
	case protoreflect.BytesKind:
		return stringNode(base64.StdEncoding.EncodeToString(v.Bytes())), nil
	}
	return wellKnownNode(v.Message().Interface())
}

func wellKnownNode(m proto.Message) (*yaml.Node, error) {
	js, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(js, &n); err != nil {
		return nil, err
	}
	plain(&n)
	if n.Kind == yaml.DocumentNode {
		return n.Content[0], nil
	}
	return &n, nil
}

func stringNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: s}
}

func intScalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagInt, Value: s}
}

// floatNode writes a float so that it reads back as one without an explicit tag
// ("5.0", not "!!float 5").
func floatNode(s string) *yaml.Node {
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagFloat, Value: s}
}
