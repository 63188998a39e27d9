// Command yamlfloor is the performance floor that `make bench` compares
// helm-canary's renderer against.
//
// It reads a multi-document YAML stream on stdin, decodes every document into
// a gopkg.in/yaml.v3 yaml.Node and encodes it straight back (yaml.v3 Encoder,
// indent 2) to stdout, each preceded by "---" as in Helm's stream. It does
// no transformation at all, so it is the cheapest honest way to fully parse
// and re-emit a stream with the YAML library the renderer itself uses: any
// post-renderer that must look inside every document and preserve comments
// costs at least this much. Comments (such as Helm's "# Source:" lines)
// survive, because yaml.Node keeps them.
//
// Each document gets a fresh Encoder on purpose. A single yaml.v3 (v3.0.1)
// Encoder kept for the whole stream never compacts its emitter's event queue
// (go-yaml/yaml issue #873), so its memory grows with every document ever
// encoded: on the 9000-document benchmark stream that is about 500 MB of
// peak RSS instead of about 14 MB, and slower too. The floor must not carry
// that cost, and a renderer should not either.
//
// Usage:
//
//	yamlfloor < in.yaml > out.yaml
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: yamlfloor < in.yaml > out.yaml")
		os.Exit(2)
	}
	docs, err := roundTrip(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "yamlfloor: document %d: %v\n", docs+1, err)
		os.Exit(1)
	}
}

// roundTrip decodes each document of r into a yaml.Node and re-encodes it to
// w. It returns the number of documents written. The reader and writer are
// buffered the same way a reasonable renderer would buffer them, so the floor
// is not inflated by per-byte syscalls.
func roundTrip(r io.Reader, w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	dec := yaml.NewDecoder(bufio.NewReaderSize(r, 64<<10))

	docs := 0
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, fmt.Errorf("decode: %w", err)
		}
		// A document holding only comments (a Helm template that rendered
		// to nothing but its "# Source:" line) carries no object; dropping
		// it is what a renderer may do too. The benchmark stream has none.
		if isEmpty(&doc) {
			continue
		}
		if _, err := bw.WriteString("---\n"); err != nil {
			return docs, err
		}
		// See the package comment: one Encoder per document keeps memory
		// bounded. Close only flushes the document; bw is left open.
		enc := yaml.NewEncoder(bw)
		enc.SetIndent(2)
		if err := enc.Encode(&doc); err != nil {
			return docs, fmt.Errorf("encode: %w", err)
		}
		if err := enc.Close(); err != nil {
			return docs, fmt.Errorf("encode: %w", err)
		}
		docs++
	}
	return docs, bw.Flush()
}

// isEmpty reports whether doc has no content: yaml.v3 decodes an empty
// document (comments only) as a document holding a null scalar with no text,
// whereas an explicit "null" or "~" keeps its text.
func isEmpty(doc *yaml.Node) bool {
	if len(doc.Content) == 0 {
		return true
	}
	c := doc.Content[0]
	return len(doc.Content) == 1 && c.Kind == yaml.ScalarNode && c.Tag == "!!null" && c.Value == ""
}
