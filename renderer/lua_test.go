package renderer

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/helm-canary/helm-canary/internal/luacheck"
)

// hostileStrings try to leave a Lua string literal or comment, or to be read
// differently by Lua than written: the escaper must carry each of them as data.
var hostileStrings = []string{
	"x-user-id\nos.execute('touch /tmp/pwned') --",
	`x"); os.execute("id"); ("`,
	`x\"); os.execute("id`,
	"x]]..os.execute('id')..[[",
	"x\r\nx-evil: 1",
	"x\u2028y\u2029z",
	"x\x00y\x1b[31m\x7f",
	`x\x41\u0041\065\z`,
	"ünïcode-\xff\xfe-bytes",
	"100% %d %s %q",
	strings.Repeat("\\", 9) + strings.Repeat(`"`, 9),
}

// luaFilter checks generated Lua in LuaJIT: it compiles, loads in a sandbox, and
// on each request touches exactly the user header and the tag header (as data,
// lower-cased as Envoy names them); it returns the tag values it set.
func luaFilter(t *testing.T, code, userHeader, tagHeader string, ids []string) []string {
	t.Helper()
	userHeader, tagHeader = strings.ToLower(userHeader), strings.ToLower(tagHeader)
	var reqs []map[string]string
	for _, id := range ids {
		req := map[string]string{tagHeader: "spoofed"}
		if id != "" {
			req[userHeader] = id
		}
		reqs = append(reqs, req)
	}
	res, err := luacheck.Run(code, reqs)
	if errors.Is(err, luacheck.ErrNoLuaJIT) && testing.Short() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("%v\nfilter:\n%s", err, code)
	}
	var tags []string
	for i, r := range res {
		for _, name := range r.Touched {
			if name != userHeader && name != tagHeader {
				t.Errorf("request %d: the filter touched header %q; want only %q and %q", i, name, userHeader, tagHeader)
			}
		}
		if got := r.Headers[userHeader]; ids[i] != "" && got != ids[i] {
			t.Errorf("request %d: user header changed to %q", i, got)
		}
		tag, ok := r.Headers[tagHeader]
		if !ok {
			tag = "nil"
		}
		tags = append(tags, tag)
	}
	return tags
}

// Hostile header names, handed to the Lua writer directly (the renderer refuses
// them before that): the filter still compiles and each name arrives as data.
func TestLuaCarriesHostileStringsAsData(t *testing.T) {
	for _, s := range hostileStrings {
		code := userLua(s, s+"-tag", 50)
		for _, line := range strings.Split(code, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "--") && strings.Contains(line, "x") {
				t.Errorf("a value reached a Lua comment: %q", line)
			}
		}
		tags := luaFilter(t, code, s, s+"-tag", []string{"", "jason", "0001"})
		if tags[0] != "nil" || tags[1] == "spoofed" || tags[2] == "spoofed" {
			t.Errorf("%q: tags %q", s, tags)
		}
	}
}

// luaString against Lua itself, byte for byte, for every byte value.
func TestLuaStringEveryByte(t *testing.T) {
	var all []byte
	for c := 0; c < 256; c++ {
		all = append(all, byte(c))
	}
	// Digits right after an escape must not be read as part of it.
	s := string(all) + "\x001\x0012\n999"
	code := "function envoy_on_request(h) h:headers():replace(\"k\", " + luaString(s) + ") end"
	res, err := luacheck.Run(code, []map[string]string{{}})
	if errors.Is(err, luacheck.ErrNoLuaJIT) && testing.Short() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := res[0].Headers["k"]; got != s {
		t.Errorf("Lua read %q, want %q", got, s)
	}
}

// Header and cookie names that are not HTTP tokens are refused before anything is
// written, naming the workload and the setting.
func TestHostileNamesRefused(t *testing.T) {
	for _, c := range []struct{ setting, want string }{
		{"userPercent: {header: \"x-user-id\\nos.execute('id') --\"}", "userPercent.header"},
		{"userPercent: {header: x-user-id, tagHeader: \"x\\\"); os.execute(\\\"id\"}", "userPercent.tagHeader"},
		{"userPercent: {header: \"x-user\\u2028id\"}", "userPercent.header"},
		{"userPercent: {header: \"x user\"}", "userPercent.header"},
		{"sticky: {cookie: \"cv=1; Domain=evil.example\"}", "sticky.cookie"},
		{"sticky: {cookie: \"cv\\r\\nSet-Cookie: admin=1\"}", "sticky.cookie"},
		{"sticky: {cookie: \"cv;\"}", "sticky.cookie"},
		{"sticky: {cookie: cv, maxAge: -5}", "sticky.maxAge"},
	} {
		cfg := "stage: \"10\"\nworkloads:\n  cart:\n    " + c.setting + "\n"
		parsed, err := ParseConfig([]byte(cfg))
		if err != nil {
			t.Fatalf("%s: %v", c.setting, err)
		}
		var opts Options
		if err := parsed.Apply(&opts); err != nil {
			t.Fatalf("%s: %v", c.setting, err)
		}
		err = renderErr(t, appAt("2.0"), opts)
		if !strings.Contains(err.Error(), "workload cart: "+c.want) {
			t.Errorf("%s: error %q does not name workload cart's %s", c.setting, err, c.want)
		}
	}
}

// Every token character is accepted, in both names.
func TestTokenNamesAccepted(t *testing.T) {
	name := "X-Odd_Name.1!#$%&'*+^`|~"
	out := renderConfig(t, appAt("2.0"), "stage: \"10\"\nworkloads:\n  cart:\n    userPercent: {header: \""+name+"\", tagHeader: \""+name+"-tag\"}\n    sticky: {cookie: \""+name+"\"}\n")
	f := find(t, out, "EnvoyFilter", "cart.default.canary-users")
	code := get(t, f, "spec.configPatches[0].patch.value.typed_config.inlineCode")
	luaFilter(t, code, name, name+"-tag", []string{"a", "b", ""})
}

// userObjects renders app (Deployment name cart) with user percentages on Istio and
// on ASM, and returns the gateway-side objects' names and the tag header.
func userObjects(t *testing.T, in string, opts Options) (names []string, tag string) {
	t.Helper()
	for _, mesh := range []string{"istio", "asm"} {
		o := opts
		o.Mesh = mesh
		for _, n := range objects(t, render(t, in, o)) {
			switch n.GetKind() {
			case "EnvoyFilter", "WasmPlugin":
				names = append(names, n.GetNamespace()+"/"+n.GetName())
				tag = n.GetAnnotations()[AnnotationTagHeader]
				if errs := validation.IsDNS1123Subdomain(n.GetName()); len(errs) > 0 {
					t.Errorf("%s name %q: %v", n.GetKind(), n.GetName(), errs)
				}
			}
		}
	}
	return names, tag
}

// Two teams' releases, in two namespaces, with a Deployment of the same name: the
// objects in the shared gateway namespace and the tag headers differ, whether the
// namespace comes from Helm (--namespace) or from the manifest.
func TestGatewayObjectsPerNamespace(t *testing.T) {
	opts := func(ns string) Options {
		return Options{Stage: mustStage(t, "10"), Namespace: ns,
			PerWorkload: map[string]WorkloadOptions{"cart": {UserPercent: &UserPercent{Header: "x-user-id"}}}}
	}
	a, tagA := userObjects(t, appAt("2.0"), opts("team-a"))
	b, tagB := userObjects(t, appAt("2.0"), opts("team-b"))
	inManifest := strings.ReplaceAll(appAt("2.0"), "  name: cart\n", "  name: cart\n  namespace: team-c\n")
	inManifest = strings.ReplaceAll(inManifest, "  name: cart-api\n", "  name: cart-api\n  namespace: team-c\n")
	c, tagC := userObjects(t, inManifest, opts(""))
	if len(a) != 2 || len(b) != 2 || len(c) != 2 {
		t.Fatalf("gateway objects %q, %q, %q: want an EnvoyFilter and a WasmPlugin each", a, b, c)
	}
	seen := map[string]bool{}
	for _, n := range append(append(a, b...), c...) {
		if seen[n] {
			t.Errorf("two teams' releases both render %s", n)
		}
		seen[n] = true
	}
	if tagA == tagB || tagA == tagC || tagB == tagC {
		t.Errorf("tag headers %q, %q, %q: two teams' gateway filters would overwrite each other's tags", tagA, tagB, tagC)
	}
	if a[0] != "istio-system/cart.team-a.canary-users" || tagA != "x-canary-cart.team-a" || c[1] != "istio-system/cart.team-c.hash-tagging" {
		t.Errorf("names %q, %q, tag %q", a, c, tagA)
	}

	// Kubernetes' 253 characters: a longer name is cut and ends in a hash.
	long := strings.Repeat("w", 250)
	longApp := strings.ReplaceAll(appAt("2.0"), "  name: cart\n", "  name: "+long+"\n")
	o := opts("team-a")
	o.PerWorkload = map[string]WorkloadOptions{long: o.PerWorkload["cart"]}
	l1, _ := userObjects(t, longApp, o)
	o.Namespace = "team-b"
	l2, _ := userObjects(t, longApp, o)
	for _, n := range append(l1, l2...) {
		if _, name, _ := strings.Cut(n, "/"); len(name) > 253 {
			t.Errorf("name of %d characters: %s", len(name), name)
		}
	}
	if l1[0] == l2[0] {
		t.Errorf("cut names collide: %s", l1[0])
	}

	// A namespace that is no namespace name is refused, naming it.
	err := renderErr(t, appAt("2.0"), opts("Team A"))
	if !strings.Contains(err.Error(), `namespace "Team A"`) {
		t.Errorf("error %q does not name the namespace", err)
	}
}

// An invalid RE2 in a workload's match is refused at render time, naming the
// workload, the match and the field; Envoy would reject the route, and until then
// nothing would match it.
func TestMatchRegexMustBeRE2(t *testing.T) {
	for _, c := range []struct{ match, want string }{
		{"[{headers: {end-user: {regex: \"(jason\"}}}]", "workload cart: match[0].headers.end-user.regex \"(jason\" is not a valid RE2"},
		{"[{uri: {prefix: /}}, {uri: {regex: \"a**\"}}]", "workload cart: match[1].uri.regex"},
		{"[{queryParams: {v: {regex: \"(?<=x)y\"}}}]", "workload cart: match[0].queryParams.v.regex"},
		{"[{withoutHeaders: {x: {regex: \"\\\\8\"}}}]", "workload cart: match[0].withoutHeaders.x.regex"},
	} {
		c2, err := ParseConfig([]byte("stage: \"10\"\nworkloads:\n  cart:\n    match: " + c.match + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		var opts Options
		if err := c2.Apply(&opts); err != nil {
			t.Fatal(err)
		}
		if err := renderErr(t, appAt("2.0"), opts); !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want %q", c.match, err, c.want)
		}
	}
	// A valid one still renders.
	renderConfig(t, appAt("2.0"), "stage: \"10\"\nworkloads:\n  cart:\n    match: [{headers: {x-user-email: {regex: \".*@gmail\\\\.com\"}}}]\n")
}

// Deployment names with YAML syntax (an alias, a tag, an anchor, a flow mapping)
// and user percentages on ASM: no panic, and the objects made from the name parse
// with the name as data.
func TestYAMLSyntaxInNamesDoesNotPanic(t *testing.T) {
	for _, name := range []string{"*cart", "!cart", "&cart", "cart}{", "'cart", "%cart", "cart|x"} {
		in := strings.ReplaceAll(appAt("2.0"), "  name: cart\n", "  name: \""+name+"\"\n")
		opts := Options{Stage: mustStage(t, "10"), Mesh: "asm",
			PerWorkload: map[string]WorkloadOptions{name: {UserPercent: &UserPercent{Header: "x-user-id"}}}}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("name %q: panic: %v", name, p)
				}
			}()
			res, err := Render([]byte(in), opts)
			if err != nil {
				return
			}
			found := false
			for _, n := range objects(t, string(res.Manifest)) {
				if n.GetKind() == "ASMHeaderPropagation" {
					found = n.GetName() == name+"-tag-propagation"
				}
			}
			if !found {
				t.Errorf("name %q: no ASMHeaderPropagation %s-tag-propagation in:\n%s", name, name, res.Manifest)
			}
		}()
	}
}

// A duplicated object is refused once, naming it and where its copies are; the
// message stays short however many copies there are.
func TestDuplicateObjectsReportedOnce(t *testing.T) {
	err := renderErr(t, strings.Repeat(appAt("2.0"), 1000), Options{Stage: mustStage(t, "10")})
	if !strings.Contains(err.Error(), "Service cart-api (namespace default) is in the stream 1000 times (document 1 (shop/templates/cart.yaml), document 3") ||
		!strings.Contains(err.Error(), "and 995 more") || len(err.Error()) > 500 {
		t.Errorf("error %q", err)
	}
	// The same name in two namespaces is two objects.
	two := appAt("2.0") + strings.ReplaceAll(strings.ReplaceAll(appAt("2.0"), "  name: cart\n", "  name: cart\n  namespace: other\n"),
		"  name: cart-api\n", "  name: cart-api\n  namespace: other\n")
	render(t, two, Options{Stage: mustStage(t, "10")})
}
