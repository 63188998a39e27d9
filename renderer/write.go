package renderer

import (
	"bytes"
	"fmt"
	"io"
)

// writeDocuments writes every document: untouched ones byte for byte, changed ones
// re-encoded under their original header, each followed by the documents derived
// from it.
func writeDocuments(buf *docWriter, docs []*document) error {
	for _, d := range docs {
		if err := writeDocument(buf, d); err != nil {
			return err
		}
	}
	return buf.err
}

// outputSize encodes the changed documents (into their out) and returns an upper
// bound of the bytes writeDocuments writes, so that the output is allocated once:
// growing a buffer of a large release by doubling holds up to three times its size.
func outputSize(docs []*document) (int, error) {
	size := 0
	for _, d := range docs {
		if d.changed && d.out == nil && d.node != nil {
			var buf bytes.Buffer
			buf.Write(d.header)
			if err := encodeNode(&buf, d.node); err != nil {
				return 0, err
			}
			d.out = buf.Bytes()
		}
		if d.out != nil {
			size += len(d.out)
		} else {
			size += len(d.raw)
		}
		n, err := outputSize(d.after)
		if err != nil {
			return 0, err
		}
		size += n + 1 // a line end between documents
	}
	return size, nil
}

// docWriter writes the output stream, remembering its last byte (documents are
// separated by a line end) and the first error.
type docWriter struct {
	w    io.Writer
	last byte
	n    int
	err  error
}

func (w *docWriter) Write(p []byte) (int, error) {
	if w.err != nil || len(p) == 0 {
		return 0, w.err
	}
	n, err := w.w.Write(p)
	w.n += n
	if n > 0 {
		w.last = p[n-1]
	}
	w.err = err
	return n, err
}

func writeDocument(buf *docWriter, d *document) error {
	if d.moved {
		return nil // written where the document it replaces was
	}
	src := d
	if d.replacedBy != nil {
		src = d.replacedBy
	}
	switch {
	case src.drop:
	case src.out != nil:
		buf.Write(src.out)
	case src.changed:
		// outputSize encoded every changed document already.
		return fmt.Errorf("%s changed but not encoded", src.describe())
	default:
		buf.Write(src.raw)
	}
	after := src.after
	if src != d {
		after = append(append([]*document{}, src.after...), d.after...)
	}
	for _, a := range after {
		if buf.n > 0 && buf.last != '\n' {
			buf.Write([]byte{'\n'})
		}
		if err := writeDocument(buf, a); err != nil {
			return err
		}
	}
	return nil
}
