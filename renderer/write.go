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
		buf.Write(src.header)
		if err := encodeNode(buf, src.node); err != nil {
			return err
		}
	default:
		buf.Write(src.raw)
	}
	after := src.after
	if src != d {
		after = append(append([]*document{}, src.after...), d.after...)
	}
	for _, a := range after {
		if n := buf.Len(); n > 0 && buf.Bytes()[n-1] != '\n' {
			buf.WriteByte('\n')
		}
		if err := writeDocument(buf, a); err != nil {
			return err
		}
	}
	return nil
}
