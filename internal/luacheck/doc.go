// Package luacheck runs an Envoy Lua filter's envoy_on_request in LuaJIT (the Lua
// Envoy embeds), sandboxed, against stand-in request headers, for tests.
package luacheck
