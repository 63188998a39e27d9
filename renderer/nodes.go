package renderer

import "sigs.k8s.io/kustomize/kyaml/yaml"

// Direct yaml.Node edits for the per-workload hot path. kyaml's filters do the same
// through Pipe, but re-check every string value against YAML 1.1 with a second parser;
// the values written here are our own names, labels and integers, which need no such
// check, and a release with thousands of workloads makes the difference visible.

// field returns the value of key in a mapping node, or nil.
func field(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// lookup follows a path of mapping keys.
func lookup(n *yaml.Node, path ...string) *yaml.Node {
	for _, p := range path {
		n = field(n, p)
	}
	return n
}

// lookupCreate follows a path of mapping keys, creating empty mappings on the way.
func lookupCreate(n *yaml.Node, path ...string) *yaml.Node {
	for _, p := range path {
		next := field(n, p)
		if next == nil || next.Kind != yaml.MappingNode || next.Tag == yaml.NodeTagNull {
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}
			setField(n, p, next)
		}
		n = next
	}
	return n
}

// setField sets key in a mapping node, appending it if absent.
func setField(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, stringNode(key), v)
}

// deleteField removes key from a mapping node.
func deleteField(m *yaml.Node, key string) {
	if m == nil {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}
