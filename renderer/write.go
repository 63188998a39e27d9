package renderer

import "bytes"

// writeDocuments writes every document: untouched ones byte for byte, changed ones
// re-encoded under their original header, each followed by the documents derived
// from it.
func writeDocuments(buf *bytes.Buffer, docs []*document) error {
	var enc encoder
	for _, d := range docs {
		if err := writeDocument(buf, &enc, d); err != nil {
			return err
		}
	}
	return nil
}

func writeDocument(buf *bytes.Buffer, enc *encoder, d *document) error {
	if d.changed {
		if err := enc.encode(buf, d.header, d.node); err != nil {
			return err
		}
	} else {
		buf.Write(d.raw)
	}
	for _, a := range d.after {
		if n := buf.Len(); n > 0 && buf.Bytes()[n-1] != '\n' {
			buf.WriteByte('\n')
		}
		if err := writeDocument(buf, enc, a); err != nil {
			return err
		}
	}
	return nil
}
