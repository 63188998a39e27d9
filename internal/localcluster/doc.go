// Package localcluster starts a real etcd + kube-apiserver with Istio's CRDs on
// loopback for tests and the demo.
//
// The binaries come from hack/testbin.sh (built from the Go module proxy and cached
// outside the clone; see Binaries). Start wires them together on free loopback
// ports in a temporary directory; Apply and DryRunApply send multi-document YAML to
// the server with server-side apply and strict field validation, so the API server
// itself (OpenAPI schemas, CEL rules, built-in validation) judges our manifests.
//
// There is no kubelet or controller-manager: objects are validated and stored, but
// nothing runs.
package localcluster
