// Package e2e holds helm-canary's end-to-end tests: the real helm 3 and helm 4 CLIs,
// with the plugin installed the way a user installs it, against a real kube-apiserver
// with Istio's CRDs and pods that run (internal/localcluster).
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
// The cluster runs pods: the controller-manager, the scheduler and kwok's simulated
// kubelets make Deployments' pods Ready, fill EndpointSlices, complete hook Jobs and
// run HPAs (pods_test.go and wait_test.go rely on it). No container runs and there
// is no Envoy, so traffic is checked on the objects and, after every successful
// `helm canary stage` or `rollback`, by Istio's own validation and analyzers over
// the namespace's deployed releases (istio_test.go, internal/istiocheck).
//
//	go test ./test/e2e/ -v -count=1   # the first run builds and caches the binaries
//	go test ./test/e2e/ -short        # skips everything
package e2e
