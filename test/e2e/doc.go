// Package e2e holds helm-canary's end-to-end tests: the real helm 3 and helm 4 CLIs,
// with the plugin installed the way a user installs it, against a real kube-apiserver
// with Istio's CRDs (internal/localcluster).
//
// The data flow of one test:
//
//	TestMain: a copy of the checkout (pluginCheckout) whose bin/helm-canary is built
//	          by the plugin's own install hook, while localcluster starts the cluster
//	helmEnv:  isolated HELM_{CONFIG,DATA,CACHE}_HOME, KUBECONFIG of the cluster,
//	          `helm plugin install <checkout>` (and, for Helm 4,
//	          `helm plugin install <checkout>/plugins/canary-postrenderer`)
//	test:     helm commands in a namespace of its own, then the live Deployments,
//	          DestinationRules and VirtualServices read back with client-go
//
// There is no kubelet: objects are stored and validated, pods never run.
//
//	go test ./test/e2e/ -v -count=1   # the first run builds and caches the binaries
//	go test ./test/e2e/ -short        # skips everything
package e2e
