package libchart

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helm-canary/helm-canary/internal/luacheck"
)

// TestLibraryLuaCarriesHostileStrings (and the cut of long gateway object names)
// hands canary-lib.userLua hostile header
// names directly (checkRouting refuses them before that in a real chart): every
// filter compiles in LuaJIT and reads and writes exactly those names, as data.
func TestLibraryLuaCarriesHostileStrings(t *testing.T) {
	hostile := []string{
		"x-user-id\nos.execute('touch /tmp/pwned') --",
		`x"); os.execute("id"); ("`,
		`x\"); os.execute("id`,
		"x]]..os.execute('id')..[[",
		"x\r\nx-evil: 1",
		"x\u2028y\u2029z",
		"x\x00y\x1b[31m\x7f",
		`x\x41\u0041\065\z`,
		"ünïcode-ïd",
		"100% %d %s %q",
		strings.Repeat("\\", 9) + strings.Repeat(`"`, 9),
		"{{ .Release.Name }}",
	}
	chart := filepath.Join(t.TempDir(), "lua")
	copyDir(t, libraryChart, filepath.Join(chart, "charts", "canary-lib"))
	values, _ := json.Marshal(map[string]any{"strings": hostile})
	files := map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: lua\nversion: 0.1.0\n",
		// JSON is YAML, but YAML wants DEL escaped too.
		"values.yaml": strings.ReplaceAll(string(values), "\x7f", `\u007f`),
		"templates/lua.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: lua
data:
  long: {{ include "canary-lib.sharedName" (list (repeat 250 "w") "team-a" "canary-users") }}
{{- range $i, $s := .Values.strings }}
  f{{ $i }}: {{ include "canary-lib.userLua" (list $s (printf "%s-tag" $s) 50) | toJson }}
{{- end }}
`,
	}
	writeFiles(t, chart, files)
	for _, tl := range tools(t) {
		set := parseObjects(t, tl.mustTemplate(t, chart, renderArgs{}))
		data, _ := set["ConfigMap/lua"]["data"].(map[string]any)
		// The name of a long workload's filter, cut as the renderer cuts it.
		long := strings.Repeat("w", 250) + ".team-a.canary-users"
		sum := sha256.Sum256([]byte(long))
		if want := long[:242] + "-" + hex.EncodeToString(sum[:])[:10]; data["long"] != want {
			t.Errorf("%s: canary-lib.sharedName cut a long name to %q, want %q", tl.name, data["long"], want)
		}
		delete(data, "long")
		if len(data) != len(hostile) {
			t.Fatalf("%s: %d filters for %d strings", tl.name, len(data), len(hostile))
		}
		for i, s := range hostile {
			code, _ := data[fmt.Sprintf("f%d", i)].(string)
			user, tag := strings.ToLower(s), strings.ToLower(s+"-tag")
			res, err := luacheck.Run(code, []map[string]string{{tag: "spoofed"}, {user: "jason", tag: "spoofed"}})
			if errors.Is(err, luacheck.ErrNoLuaJIT) && testing.Short() {
				t.Skip(err)
			}
			if err != nil {
				t.Fatalf("%s: %q: %v\n%s", tl.name, s, err, code)
			}
			for j, r := range res {
				for _, name := range r.Touched {
					if name != user && name != tag {
						t.Errorf("%s: %q request %d: the filter touched %q", tl.name, s, j, name)
					}
				}
			}
			if _, ok := res[0].Headers[tag]; ok {
				t.Errorf("%s: %q: a request without the user header kept its tag", tl.name, s)
			}
			if v := res[1].Headers[tag]; v != "canary" && v != "production" {
				t.Errorf("%s: %q: tag %q", tl.name, s, v)
			}
		}
	}
}
