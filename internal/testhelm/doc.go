// Package testhelm runs the real helm binaries for the tests, the demo and the
// benchmarks: each in a Helm home of its own, bounded in time, its failures carrying
// its output, and copies the checkout a test installs the plugin from.
package testhelm
