// Package golden runs the helm-canary binary on real Helm post-renderer inputs, one
// case per directory, compares its output with reviewed expected files, and applies
// every expected output to a real API server with Istio's CRDs (server-side dry run,
// strict validation).
//
// A case directory holds case.yaml (stdin file, arguments, what it shows), and
// either expected.yaml (plus warnings.txt when the render warns) or error.txt, the
// substrings the error message must contain. Paths in case.yaml are relative to the
// case directory, so a case can pin production to another case's expected output,
// the way a release's deployed manifest pins the next stage.
//
// go test ./test/golden -update rewrites expected files; review the diff before
// committing it.
package golden
