package renderer

import (
	"bytes"
	"fmt"
	"strings"
)

// Part selects which documents of a rendered stream are written: all of them, only
// the mesh's routing configuration, or everything else. Where the mesh's
// configuration lives in another cluster (Alibaba ASM's control plane, Istio's
// primary-remote or external control plane), a pipeline applies the two parts with
// two helm upgrades, one per cluster.
type Part string

// The parts of a stream.
const (
	PartAll       Part = ""
	PartWorkloads Part = "workloads"
	PartMesh      Part = "mesh"
)

// ParsePart reads a --part flag or a canary.part value; "all" and "" are the whole
// stream.
func ParsePart(s string) (Part, error) {
	switch s {
	case "", "all":
		return PartAll, nil
	case string(PartWorkloads), string(PartMesh):
		return Part(s), nil
	}
	return PartAll, fmt.Errorf("part %q: use workloads (everything but the mesh's routing objects), mesh (only them) or all", s)
}

// String is the flag value.
func (p Part) String() string {
	if p == PartAll {
		return "all"
	}
	return string(p)
}

// IsMeshObject reports whether an object of this apiVersion belongs to the mesh's
// configuration, which the control plane reads (in Istio's primary-remote and
// external control plane topologies, and in ASM, from the config cluster, not from
// the cluster that runs the pods): Istio's own API groups (networking, extensions,
// security, telemetry: VirtualService, DestinationRule, Gateway, EnvoyFilter,
// WasmPlugin, ...) and ASM's (istio.alibabacloud.com: ASMHeaderPropagation, ...).
func IsMeshObject(apiVersion string) bool {
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		return false // the core group: v1
	}
	return group == "istio.io" || strings.HasSuffix(group, ".istio.io") ||
		group == "istio.alibabacloud.com" || strings.HasSuffix(group, ".istio.alibabacloud.com")
}

// SplitParts cuts a manifest stream into its workload part and its mesh part. Each
// document goes to one of them as the exact bytes it was (separator, comments and
// all), in the order of the stream; documents with no object (comments only) stay
// with the workloads.
func SplitParts(in []byte) (workloads, mesh []byte, err error) {
	var w, m bytes.Buffer
	for _, d := range splitDocuments(in) {
		isMesh, err := d.isMesh()
		if err != nil {
			return nil, nil, err
		}
		out := &w
		if isMesh {
			out = &m
		}
		// A document ends at the next one's separator line; the last one of a stream
		// may lack its final newline, which the next written document needs.
		if n := out.Len(); n > 0 && out.Bytes()[n-1] != '\n' {
			out.WriteByte('\n')
		}
		out.Write(d.raw)
	}
	return w.Bytes(), m.Bytes(), nil
}

// selectPart keeps one part of a rendered stream.
func selectPart(stream []byte, p Part) ([]byte, error) {
	if p == PartAll {
		return stream, nil
	}
	workloads, mesh, err := SplitParts(stream)
	if p == PartMesh {
		return mesh, err
	}
	return workloads, err
}

// isMesh classifies a document by its top-level apiVersion, read by a cheap scan
// when the document is laid out plainly, else parsed.
func (d *document) isMesh() (bool, error) {
	if d.empty() {
		return false, nil
	}
	if v, ok := scanAPIVersion(d.body); ok {
		return IsMeshObject(v), nil
	}
	n, err := d.parse()
	if err != nil || n == nil {
		return false, err
	}
	return IsMeshObject(n.GetApiVersion()), nil
}

// scanAPIVersion reads a block-style document's top-level apiVersion without
// parsing it; ok is false when it cannot be sure (flow style, a quoted scalar over
// several lines, no or several apiVersion lines).
func scanAPIVersion(body []byte) (string, bool) {
	version, n := "", 0
	for len(body) > 0 {
		var line []byte
		line, body = nextLine(body)
		if len(line) == 0 {
			continue
		}
		if line[0] == '{' || line[0] == '[' || opensQuote(line) {
			return "", false
		}
		if v, ok := bytes.CutPrefix(line, []byte("apiVersion:")); ok {
			n++
			version = plainAPIVersion(v)
		}
	}
	return version, n == 1 && version != ""
}

// plainAPIVersion is plainScalar with the slash an apiVersion has.
func plainAPIVersion(v []byte) string {
	group, version, found := bytes.Cut(v, []byte("/"))
	if !found {
		return plainScalar(v)
	}
	// "networking.istio.io/v1": both halves are plain scalars once the quotes
	// around the whole are taken off.
	s := strings.TrimSpace(string(group) + "/" + string(version))
	if i := strings.Index(s, " #"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		s = s[1 : len(s)-1]
	}
	g, ver, _ := strings.Cut(s, "/")
	if plainScalar([]byte(g)) != g || plainScalar([]byte(ver)) != ver || g == "" || ver == "" {
		return ""
	}
	return s
}
