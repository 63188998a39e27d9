package luacheck

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// ErrNoLuaJIT is returned when no luajit binary is on PATH.
var ErrNoLuaJIT = errors.New("luajit is not installed (Debian: apt-get install luajit; `make testbin` installs it)")

// Result is what the filter did to one request.
type Result struct {
	// Headers are the request's headers after the filter ran.
	Headers map[string]string
	// Touched lists the header names the filter read, replaced or removed, in order.
	Touched []string
}

// The harness receives the filter and the requests hex-encoded, so that nothing
// but the filter itself is Lua source, and runs the filter in an environment
// without os, io, require or load*: code smuggled into a filter fails there
// instead of running.
const harness = `
local function unhex(s) return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end)) end
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", string.byte(c)) end)) end
local chunk, err = loadstring(unhex(FILTER), "=filter")
if not chunk then io.stderr:write("compile: " .. err .. "\n"); os.exit(2) end
local env = {string = string, math = math, table = table, tostring = tostring, tonumber = tonumber,
  type = type, pairs = pairs, ipairs = ipairs, pcall = pcall, error = error}
setfenv(chunk, env)
local ok, rerr = pcall(chunk)
if not ok then io.stderr:write("load: " .. tostring(rerr) .. "\n"); os.exit(3) end
if type(env.envoy_on_request) ~= "function" then io.stderr:write("no envoy_on_request\n"); os.exit(4) end
for _, req in ipairs(REQUESTS) do
  local h = {}
  for k, v in pairs(req) do h[unhex(k)] = unhex(v) end
  local headers = {
    get = function(_, k) print("touch " .. hex(k)); return h[k] end,
    replace = function(_, k, v) print("touch " .. hex(k)); h[k] = v end,
    remove = function(_, k) print("touch " .. hex(k)); h[k] = nil end,
  }
  local ok, rerr = pcall(env.envoy_on_request, {headers = function() return headers end})
  if not ok then io.stderr:write("envoy_on_request: " .. tostring(rerr) .. "\n"); os.exit(5) end
  for k, v in pairs(h) do print("header " .. hex(k) .. " " .. hex(v)) end
  print("end")
end
`

// Run compiles filter in LuaJIT and calls its envoy_on_request once per request
// (header name to value; Envoy's names are lower-case). An error means the filter
// does not compile, fails to load, or fails on a request.
func Run(filter string, requests []map[string]string) ([]Result, error) {
	luajit, err := exec.LookPath("luajit")
	if err != nil {
		return nil, ErrNoLuaJIT
	}
	var script strings.Builder
	fmt.Fprintf(&script, "FILTER = %q\nREQUESTS = {\n", hex.EncodeToString([]byte(filter)))
	for _, req := range requests {
		keys := make([]string, 0, len(req))
		for k := range req {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		script.WriteString("  {")
		for _, k := range keys {
			fmt.Fprintf(&script, "[%q] = %q, ", hex.EncodeToString([]byte(k)), hex.EncodeToString([]byte(req[k])))
		}
		script.WriteString("},\n")
	}
	script.WriteString("}\n" + harness)
	cmd := exec.Command(luajit, "-")
	cmd.Stdin = strings.NewReader(script.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("luajit: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var out []Result
	cur := Result{Headers: map[string]string{}}
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == "end":
			out = append(out, cur)
			cur = Result{Headers: map[string]string{}}
		case len(f) >= 2 && f[0] == "touch":
			cur.Touched = append(cur.Touched, unhex(f[1]))
		case len(f) >= 2 && f[0] == "header":
			v := ""
			if len(f) == 3 {
				v = unhex(f[2])
			}
			cur.Headers[unhex(f[1])] = v
		case line == "":
		default:
			return nil, fmt.Errorf("luajit: the filter printed %q", line)
		}
	}
	if len(out) != len(requests) {
		return nil, fmt.Errorf("luajit: %d results for %d requests:\n%s", len(out), len(requests), stdout.String())
	}
	return out, nil
}

func unhex(s string) string {
	b, _ := hex.DecodeString(s)
	return string(b)
}
