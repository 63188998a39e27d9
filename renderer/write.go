package renderer

import "bytes"

// writeDocuments writes every document: untouched ones byte for byte, changed ones
// re-encoded under their original header, each followed by the documents derived
// from it.
func writeDocuments(buf *bytes.Buffer, docs []*document) error {
	for _, d := range docs {
		if err := writeDocument(buf, d); err != nil {
			return err
		}
	}
	return nil
}

func writeDocument(buf *bytes.Buffer, d *document) error {
	switch {
	case d.out != nil:
		buf.Write(d.out)
	case d.changed:
		buf.Write(d.header)
		if err := encodeNode(buf, d.node); err != nil {
			return err
		}
	default:
		buf.Write(d.raw)
	}
	for _, a := range d.after {
		if n := buf.Len(); n > 0 && buf.Bytes()[n-1] != '\n' {
			buf.WriteByte('\n')
		}
		if err := writeDocument(buf, a); err != nil {
			return err
		}
	}
	return nil
}
