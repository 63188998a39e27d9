package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRoundTrip checks that the floor really re-emits every document with
// its comments, in Helm's "---"-separated shape, and drops comment-only
// documents (which carry no object) without failing.
func TestRoundTrip(t *testing.T) {
	in := "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n    name: a\n" +
		"---\n# Source: c/templates/empty.yaml\n" +
		"---\n# Source: c/templates/b.yaml\nkind: List\nitems:\n- x: 1 # trailing\n"
	want := "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n" +
		"---\n# Source: c/templates/b.yaml\nkind: List\nitems:\n  - x: 1 # trailing\n"
	var out bytes.Buffer
	docs, err := roundTrip(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	if docs != 2 || out.String() != want {
		t.Errorf("got %d documents:\n%s\nwant 2:\n%s", docs, out.String(), want)
	}
}
