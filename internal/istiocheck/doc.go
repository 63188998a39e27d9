// Package istiocheck runs Istio's own validation (istiod's admission webhook) and
// analyzers (istioctl analyze) over manifests for the tests, through the istio-check
// binary hack/testbin.sh builds, and holds the allow-list of their findings we accept.
package istiocheck
