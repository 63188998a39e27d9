package renderer

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Configuration is part of the version (hazard 12). A ConfigMap or Secret that the
// canary's pod template references and whose content differs from the production
// manifest's keeps production's content under its own name, and the canary gets the
// new content as a copy, NAME-canary, that only the canary's pod template
// references. At swap production takes the new content under the original name (the
// copy stays while canary pods run, so that they never restart mid-promotion); at
// stable and final the copies go. A config whose content is unchanged passes through
// byte for byte and gets no copy.

// AnnotationCopyOf marks a ConfigMap or Secret helm-canary made for a canary; its
// value is the name of the object it copies. A render of a rendered stream reads it
// to recognise its own copies.
const AnnotationCopyOf = "helm-canary.io/copy-of"

// maxObjectName is the longest name of a ConfigMap or Secret (a DNS subdomain).
const maxObjectName = 253

type configKey struct{ kind, ns, name string }

// config is one ConfigMap or Secret that a canaried pod template references.
type config struct {
	key configKey
	doc *document // the stream's object
	// prod is the production manifest's object; prior a copy an earlier render made
	// (the stream was rendered before); hadCopy: the production manifest or the stream
	// holds such a copy.
	prod, prior *document
	hadCopy     bool
	// canary is the content the canary gets (the prior copy's when there is one);
	// baseline what production runs, or nil when nothing says.
	canary, baseline *yaml.RNode
	differs          bool
	copyName         string
	users            []*workload
}

// canaryCopies reports whether a workload's canary reads the copy: while canary
// pods run, when the content is new, and at swap and final's first step whenever an
// earlier stage made a copy (production has the same content by then, but the
// canary pods keep what they started with rather than restart while they serve).
func (c *config) canaryCopies(w *workload) bool {
	return w.canaryUp() && (c.differs || (w.Stage.ProductionFromRender() && c.hadCopy))
}

// configIndex finds ConfigMaps and Secrets by kind and name without parsing every
// one: the cheap scan's name files most of them.
type configIndex struct {
	byName   map[configKey][]*document // ns left empty: matched once parsed
	copies   map[configKey][]*document // by the name of the object they copy
	lastWins bool                      // the production manifest's index
}

func (r *release) indexConfigs(docs []*document) (*configIndex, error) {
	ix := &configIndex{byName: map[configKey][]*document{}, copies: map[configKey][]*document{}}
	for _, d := range docs {
		if d.empty() || (d.kind != "ConfigMap" && d.kind != "Secret") {
			continue
		}
		if d.name == "" || bytes.Contains(d.body, []byte(AnnotationCopyOf)) {
			n, err := d.parse()
			if err != nil {
				return nil, err
			}
			if of := n.GetAnnotations()[AnnotationCopyOf]; of != "" {
				k := configKey{d.kind, "", of}
				ix.copies[k] = append(ix.copies[k], d)
				continue
			}
		}
		k := configKey{d.kind, "", d.name}
		ix.byName[k] = append(ix.byName[k], d)
	}
	return ix, nil
}

// find returns the one non-hook object of a kind and name in a namespace, nil when
// there is none, and an error when the stream holds two. In the production manifest
// the last one counts, as its last Deployment of a name does: helm-canary appends a
// workload's last stable objects to pin one workload back (release.pinToLastStable).
func (ix *configIndex) find(r *release, m map[configKey][]*document, k configKey) (*document, error) {
	var found []*document
	for _, d := range m[configKey{k.kind, "", k.name}] {
		n, err := d.parse()
		if err != nil {
			return nil, err
		}
		if n == nil || metaOf(n).hook || r.namespaceOf(d.ns) != k.ns {
			continue
		}
		found = append(found, d)
	}
	if len(found) > 1 && ix.lastWins {
		return found[len(found)-1], nil
	}
	if len(found) > 1 {
		return nil, fmt.Errorf("%s %s (namespace %s) is in the stream %d times (%s); Kubernetes keeps one object per kind, namespace and name, so the copies would overwrite each other: render it once",
			k.kind, k.name, k.ns, len(found), where(found))
	}
	if len(found) == 0 {
		return nil, nil
	}
	return found[0], nil
}

// podConfigRef is a place in a pod template that names a ConfigMap or Secret.
type podConfigRef struct {
	kind string
	node *yaml.Node // the name scalar
}

// podConfigRefs lists the ConfigMaps and Secrets a pod template's pods read:
// volumes (projected ones too), envFrom and env valueFrom, in every container list.
// imagePullSecrets and CSI secret references are not configuration of the version.
func podConfigRefs(tmpl *yaml.Node) []podConfigRef {
	spec := field(tmpl, "spec")
	var refs []podConfigRef
	add := func(kind string, n *yaml.Node) {
		if n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
			refs = append(refs, podConfigRef{kind, n})
		}
	}
	items := func(n *yaml.Node) []*yaml.Node {
		if n == nil || n.Kind != yaml.SequenceNode {
			return nil
		}
		return n.Content
	}
	for _, v := range items(field(spec, "volumes")) {
		add("ConfigMap", lookup(v, "configMap", "name"))
		add("Secret", lookup(v, "secret", "secretName"))
		for _, s := range items(lookup(v, "projected", "sources")) {
			add("ConfigMap", lookup(s, "configMap", "name"))
			add("Secret", lookup(s, "secret", "name"))
		}
	}
	for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
		for _, c := range items(field(spec, list)) {
			for _, e := range items(field(c, "envFrom")) {
				add("ConfigMap", lookup(e, "configMapRef", "name"))
				add("Secret", lookup(e, "secretRef", "name"))
			}
			for _, e := range items(field(c, "env")) {
				add("ConfigMap", lookup(e, "valueFrom", "configMapKeyRef", "name"))
				add("Secret", lookup(e, "valueFrom", "secretKeyRef", "name"))
			}
		}
	}
	return refs
}

// configCopyName names the canary's copy: NAME-canary, or, when that is longer than
// a name may be, a shortened NAME with a hash of the whole name before the suffix.
func configCopyName(name string) string {
	if n := name + CanarySuffix; len(n) <= maxObjectName {
		return n
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:])[:10]
	keep := maxObjectName - len(CanarySuffix) - len(h) - 1
	return strings.TrimRight(name[:keep], "-.") + "-" + h + CanarySuffix
}

// configData is what a pod sees of a ConfigMap or Secret: its keys' bytes and, for
// a Secret, its type. Labels and annotations are not part of it: a new chart
// version's labels alone make no copy.
type configData struct {
	typ  string
	data map[string]string
}

func contentOf(n *yaml.RNode) configData {
	c := configData{data: map[string]string{}}
	y := n.YNode()
	if t := field(y, "type"); t != nil {
		c.typ = t.Value
	}
	if c.typ == "" && n.GetKind() == "Secret" {
		c.typ = "Opaque" // the API server's default
	}
	decoded := func(v string) string {
		if b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), "")); err == nil {
			return string(b)
		}
		return "\x00undecodable:" + v
	}
	read := func(key string, decode bool) {
		m := field(y, key)
		if m == nil || m.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			v := m.Content[i+1].Value
			if decode {
				v = decoded(v)
			}
			c.data[m.Content[i].Value] = v
		}
	}
	if n.GetKind() == "Secret" {
		read("data", true)
		read("stringData", false) // the API server lets stringData win
	} else {
		read("data", false)
		read("binaryData", true)
	}
	return c
}

func sameContent(a, b *yaml.RNode) bool {
	ca, cb := contentOf(a), contentOf(b)
	return ca.typ == cb.typ && maps.Equal(ca.data, cb.data)
}

func immutable(n *yaml.RNode) bool {
	v := field(n.YNode(), "immutable")
	return v != nil && v.Value == "true"
}

// productionPinned reports whether the workload's production keeps the pod template
// it runs now: pinned by the production manifest, or by the stream itself when it
// was rendered before, at every stage but swap and final.
func (w *workload) productionPinned() bool {
	return w.pinned || (w.prior != nil && !w.Stage.ProductionFromRender())
}

// config returns what is known of one referenced ConfigMap or Secret, nil when the
// release does not render it (made outside the release: nothing to pin).
func (r *release) config(k configKey) (*config, error) {
	if c, ok := r.configs[k]; ok {
		return c, nil
	}
	if err := r.ensureConfigIx(); err != nil {
		return nil, err
	}
	byName := configKey{k.kind, "", k.name}
	if len(r.configIx.copies[byName]) == 0 && (r.prodConfigIx == nil || len(r.prodConfigIx.byName[byName]) == 0) {
		// Nothing says what production reads: the stream's object is production's
		// too, left unparsed.
		if r.configs == nil {
			r.configs = map[configKey]*config{}
		}
		r.configs[k] = nil
		return nil, nil
	}
	doc, err := r.configIx.find(r, r.configIx.byName, k)
	if err != nil {
		return nil, err
	}
	var c *config
	if doc != nil {
		c = &config{key: k, doc: doc, copyName: configCopyName(k.name)}
		if c.prior, err = r.configIx.find(r, r.configIx.copies, k); err != nil {
			return nil, err
		}
		if r.prodConfigIx != nil {
			if c.prod, err = r.prodConfigIx.find(r, r.prodConfigIx.byName, k); err != nil {
				return nil, fmt.Errorf("production manifest: %w", err)
			}
			prodCopy, err := r.prodConfigIx.find(r, r.prodConfigIx.copies, k)
			if err != nil {
				return nil, fmt.Errorf("production manifest: %w", err)
			}
			c.hadCopy = prodCopy != nil
		}
		c.hadCopy = c.hadCopy || c.prior != nil
		c.canary = doc.node
		if c.prior != nil {
			c.canary = c.prior.node
		}
		switch {
		case c.prod != nil:
			c.baseline = c.prod.node
		case c.prior != nil:
			c.baseline = doc.node // the earlier render left production's content here
		}
		c.differs = c.baseline != nil && !sameContent(c.baseline, c.canary)
		r.configOrder = append(r.configOrder, c)
	}
	if r.configs == nil {
		r.configs = map[configKey]*config{}
	}
	r.configs[k] = c
	return c, nil
}

// canaryConfigNames decides, for one workload, what each ConfigMap and Secret name
// in its canary's pod template (rendered) becomes: the copy's name when the canary
// runs and the content is new, the original's otherwise (a copy named by an earlier
// render goes back to its original when no copy is needed now).
func (r *release) canaryConfigNames(w *workload, rendered *yaml.Node) (map[configKey]string, error) {
	renames := map[configKey]string{}
	ns := r.namespaceOf(w.d.ns)
	for _, ref := range podConfigRefs(rendered) {
		name := ref.node.Value
		k := configKey{ref.kind, ns, name}
		if _, done := renames[k]; done {
			continue
		}
		c, err := r.config(k)
		if err != nil {
			return nil, err
		}
		if c == nil {
			if orig, ok := r.copyOriginal(k); ok {
				if c, err = r.config(configKey{k.kind, ns, orig}); err != nil {
					return nil, err
				}
			}
		}
		if c == nil {
			continue
		}
		c.users = append(c.users, w)
		if c.canaryCopies(w) {
			renames[k] = c.copyName
		} else {
			renames[k] = c.key.name
		}
	}
	return renames, nil
}

// ensureConfigIx indexes the stream's ConfigMaps and Secrets, once, when a pod
// template reads one.
func (r *release) ensureConfigIx() error {
	if r.configIx != nil {
		return nil
	}
	ix, err := r.indexConfigs(r.configDocs)
	r.configIx = ix
	return err
}

// copyOriginal names the object a copy in the stream was made of.
func (r *release) copyOriginal(k configKey) (string, bool) {
	if err := r.ensureConfigIx(); err != nil || r.configIx == nil {
		return "", false // the error comes back from config()
	}
	for ck, docs := range r.configIx.copies {
		for _, d := range docs {
			if ck.kind == k.kind && d.name == k.name && r.namespaceOf(d.ns) == k.ns {
				return ck.name, true
			}
		}
	}
	return "", false
}

// renameConfigRefs applies renames to a pod template through set, which edits
// either the tree or the document's bytes.
func renameConfigRefs(tmpl *yaml.Node, ns string, renames map[configKey]string, set func(*yaml.Node, string)) {
	for _, ref := range podConfigRefs(tmpl) {
		if to, ok := renames[configKey{ref.kind, ns, ref.node.Value}]; ok && to != ref.node.Value {
			set(ref.node, to)
		}
	}
}

func setScalar(n *yaml.Node, v string) {
	n.Value, n.Style, n.Tag = v, 0, yaml.NodeTagString
}

// productionConfigNames maps the canary's copy names back to their originals, for
// a production that takes the pod template an earlier render gave the canary (swap
// and final of a rendered stream).
func (r *release) productionConfigNames(tmpl *yaml.Node, ns string) map[configKey]string {
	renames := map[configKey]string{}
	for _, ref := range podConfigRefs(tmpl) {
		k := configKey{ref.kind, ns, ref.node.Value}
		if orig, ok := r.copyOriginal(k); ok {
			renames[k] = orig
		}
	}
	return renames
}

// settleConfigs writes each referenced config as production must see it, adds the
// canary's copies, and drops an earlier render's copies this stage does not need.
// It runs once the canaried workloads are settled (resolveSharedHosts may have left
// some alone).
func (r *release) settleConfigs() error {
	if len(r.configOrder) == 0 {
		return r.carryProductionConfigs()
	}
	canaried := map[*workload]bool{}
	for _, w := range r.workloads {
		canaried[w] = true
	}
	for _, c := range r.configOrder {
		var pinned, promoted []string
		needed := false
		for _, u := range c.users {
			if !canaried[u] {
				continue
			}
			if u.productionPinned() {
				pinned = append(pinned, u.name)
			} else {
				promoted = append(promoted, u.name)
			}
			needed = needed || c.canaryCopies(u)
		}
		if len(pinned)+len(promoted) == 0 {
			continue
		}
		what := fmt.Sprintf("%s %s", c.key.kind, c.key.name)
		if c.differs && immutable(c.baseline) {
			if len(pinned) == 0 {
				return fmt.Errorf("%s is immutable (immutable: true) in production, and this version changes its data: Kubernetes refuses to update it, so production cannot take the new content now. Give each version's content a name of its own (a content hash in the name, as kustomize's configMapGenerator does: production keeps the old object until swap), or delete %s before this stage so that the upgrade creates it anew",
					what, c.key.name)
			}
			r.warnf("%s is immutable (immutable: true) in production, and this version changes its data: the canary reads the new data from %s, but swap will be refused (Kubernetes cannot update an immutable object); give each version's content a name of its own", what, c.copyName)
		}
		if len(pinned) > 0 && len(promoted) > 0 && c.differs {
			r.warnf("%s is read by %s, whose production keeps its version, and by %s, whose production takes the new one at this stage: it keeps production's content until all of them are at swap or final",
				what, strings.Join(pinned, ", "), strings.Join(promoted, ", "))
		}
		if len(pinned) > 0 {
			if c.differs && c.prod != nil {
				if err := c.writeBaseline(); err != nil {
					return err
				}
			}
			if c.differs {
				r.warnOtherUsers(c)
			}
		} else if c.prior != nil && !sameContent(c.prior.node, c.doc.node) {
			// The stream was rendered before: production takes the copy's content.
			n := c.prior.node.Copy()
			setField(lookupCreate(n.YNode(), "metadata"), "name", stringNode(c.key.name))
			deleteField(lookup(n.YNode(), "metadata", "annotations"), AnnotationCopyOf)
			if v := field(c.doc.node.YNode(), "immutable"); v != nil {
				setField(n.YNode(), "immutable", v) // the copy dropped it
			}
			var buf bytes.Buffer
			buf.Write(c.doc.header)
			if err := encodeNode(&buf, n); err != nil {
				return err
			}
			c.doc.out = buf.Bytes()
		}
		if needed {
			if err := r.makeCopy(c); err != nil {
				return err
			}
		} else if c.prior != nil {
			c.prior.drop = true
		}
	}
	return r.carryProductionConfigs()
}

// writeBaseline writes production's content under the original name, in the
// stream's place for the object (its header: Helm 3's Source comment).
func (c *config) writeBaseline() error {
	var buf bytes.Buffer
	buf.Write(c.doc.header)
	filename := c.doc.node.GetAnnotations()[helm4FilenameAnnotation]
	if filename == "" || c.prod.node.GetAnnotations()[helm4FilenameAnnotation] == filename {
		buf.Write(c.prod.body)
		if !bytes.HasSuffix(c.prod.body, []byte("\n")) {
			buf.WriteByte('\n')
		}
	} else {
		// Helm 4 stores manifests without the filename annotation it hands a
		// post-renderer: put it back, so that Helm files the object as before.
		n := c.prod.node.Copy()
		setField(lookupCreate(n.YNode(), "metadata", "annotations"), helm4FilenameAnnotation, stringNode(filename))
		if err := encodeNode(&buf, n); err != nil {
			return err
		}
	}
	c.doc.out = buf.Bytes()
	return nil
}

// makeCopy adds the canary's copy right after the original (or where an earlier
// render's copy was). The copy is never immutable, so that the next canary version
// can update it in place.
func (r *release) makeCopy(c *config) error {
	if clash, err := r.configIx.find(r, r.configIx.byName, configKey{c.key.kind, c.key.ns, c.copyName}); err != nil || clash != nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("%s: helm-canary makes a %s named %s for the canary (the new content of %s %s), and the chart has one already; two objects of one name cannot both be applied: rename the chart's %s",
			clash.describe(), c.key.kind, c.copyName, c.key.kind, c.key.name, c.key.kind)
	}
	n := c.canary.Copy()
	y := n.YNode()
	meta := lookupCreate(y, "metadata")
	setField(meta, "name", stringNode(c.copyName))
	setField(lookupCreate(meta, "annotations"), AnnotationCopyOf, stringNode(c.key.name))
	deleteField(y, "immutable")
	filename := c.doc.node.GetAnnotations()[helm4FilenameAnnotation]
	doc, err := attach(c.doc, c.doc.source(), filename, n)
	if err != nil {
		return err
	}
	if c.prior != nil {
		c.prior.replacedBy, doc.moved = doc, true
	}
	return nil
}

// podTemplateOf finds the pod template of any object that runs pods.
func podTemplateOf(n *yaml.RNode) *yaml.Node {
	y := n.YNode()
	switch n.GetKind() {
	case "Pod":
		return y
	case "CronJob":
		return lookup(y, "spec", "jobTemplate", "spec", "template")
	case "Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "ReplicationController":
		return lookup(y, "spec", "template")
	}
	return nil
}

// warnOtherUsers names the pods besides the canaried ones that read a config whose
// new content waits for swap: they keep production's content too.
func (r *release) warnOtherUsers(c *config) {
	canaried := map[*document]bool{}
	for _, w := range r.workloads {
		canaried[w.d.doc] = true
	}
	for _, d := range r.docs {
		switch d.kind {
		case "Pod", "CronJob", "Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "ReplicationController":
		default:
			continue
		}
		if canaried[d] || d.generated || r.priorOf[d] != "" || !bytes.Contains(d.body, []byte(c.key.name)) {
			continue
		}
		n := d.node
		if n == nil {
			var err error
			if n, err = newDocument(d.raw).parse(); err != nil || n == nil {
				continue // the render did not need it; Kubernetes will say what is wrong
			}
		}
		if r.namespaceOf(n.GetNamespace()) != c.key.ns {
			continue
		}
		for _, ref := range podConfigRefs(podTemplateOf(n)) {
			if ref.kind == c.key.kind && ref.node.Value == c.key.name {
				r.warnf("%s is read by %s %s too, which is not canaried: it keeps production's content of %s until swap",
					c.key.kind+" "+c.key.name, n.GetKind(), n.GetName(), c.key.name)
				break
			}
		}
	}
}

// carryProductionConfigs keeps the ConfigMaps and Secrets that a pinned production
// pod template reads when this chart version no longer renders them (a name with a
// content hash, a renamed object): without them Helm would delete what production
// runs on. They leave the release once production stops reading them, at swap.
func (r *release) carryProductionConfigs() error {
	if r.prodConfigIx == nil {
		return nil
	}
	if err := r.ensureConfigIx(); err != nil {
		return err
	}
	carried := map[configKey]bool{}
	for _, w := range r.workloads {
		if !w.pinned {
			continue
		}
		ns := r.namespaceOf(w.d.ns)
		for _, ref := range podConfigRefs(r.pinned[w.name].YNode()) {
			k := configKey{ref.kind, ns, ref.node.Value}
			if carried[k] {
				continue
			}
			if d, err := r.configIx.find(r, r.configIx.byName, k); err != nil || d != nil {
				if err != nil {
					return err
				}
				continue
			}
			prod, err := r.prodConfigIx.find(r, r.prodConfigIx.byName, k)
			if err != nil {
				return fmt.Errorf("production manifest: %w", err)
			}
			if prod == nil {
				continue
			}
			carried[k] = true
			n := prod.node.Copy()
			if _, err := attach(w.d.doc, prod.source(), w.filename, n); err != nil {
				return err
			}
			r.warnf("%s %s is not rendered by this chart version, but production's pods read it: it is kept as production runs it until swap", k.kind, k.name)
		}
	}
	return nil
}

// ConfigsReadBy lists the ConfigMaps and Secrets ("Kind/name") that the pods of an
// object read (a Deployment's, a Pod's, ...: volumes, envFrom, env valueFrom), so
// that pinning a workload's production to an older revision pins what its pods read
// with it.
func ConfigsReadBy(object []byte) ([]string, error) {
	n, err := yaml.Parse(string(object))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ref := range podConfigRefs(podTemplateOf(n)) {
		out = append(out, ref.kind+"/"+ref.node.Value)
	}
	return out, nil
}
