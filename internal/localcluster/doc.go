// Package localcluster starts a local Kubernetes cluster for tests and the demo:
// etcd, kube-apiserver with Istio's CRDs, kube-controller-manager, kube-scheduler and
// kwok simulating Nodes and their kubelets, all on loopback.
//
// The binaries come from hack/testbin.sh (built from the Go module proxy and cached
// outside the clone; see Binaries). Start wires them together on free loopback
// ports in a temporary directory; Apply and DryRunApply send multi-document YAML to
// the server with server-side apply and strict field validation, so the API server
// itself (OpenAPI schemas, CEL rules, built-in validation) judges our manifests.
//
// Pods are scheduled on the simulated Nodes and become Running and Ready (or, with
// an image tagged NeverReadyTag, Running and never Ready); Jobs complete. No
// container runs and there is no network or Envoy: traffic is not observable here.
// Options.APIOnly starts etcd and kube-apiserver alone, for callers that only ask
// the API server's opinion of manifests.
package localcluster
