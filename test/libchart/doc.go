// Package libchart tests charts/canary-lib, the library chart that renders inside a
// chart the objects helm-canary's post-renderer produces, through examples/productpage's
// library mode (canaryLib.enabled=true):
//
//   - lint: helm lint is clean for the library and for the example in both modes;
//   - schema: bad values (weight 150, negative replicas, misspelt keys) fail helm
//     template and helm lint with a message naming the value;
//   - equivalence: for every stage, library mode renders the same set of objects as
//     the post-renderer path (the reviewed goldens under test/golden, and a fresh
//     helm template | helm-canary render chain for the autoscaling and gateway
//     variants), compared as parsed objects;
//   - routing: for each routing setting (match, sticky, userPercent on Istio and ASM,
//     mirror, all together, with a gateway), library mode given the canary: block
//     renders what helm template | helm-canary render --config renders with the same
//     file, at every stage (extras at preview, 10, 100 and swap; none at stable,
//     final's draining step and final); a chart route of its own (name, matches,
//     timeout, retries, mirror) and a multi-container pod through a chart built
//     around charts/canary-lib; the library's refusals of malformed settings; and
//     the routes and gateway filter live on the API server;
//   - end to end: seed 001's seven helm upgrade commands and its rollback replayed
//     with helm 3 and helm 4 against a real kube-apiserver, checking the live
//     objects after each; and a release switched between plain mode (with the
//     post-renderer) and library mode.
//
// Rendering and linting run through the Helm SDK always, and through the real helm 3
// and helm 4 binaries unless -short (which also skips the API server).
package libchart
