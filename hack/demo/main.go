// Command demo walks examples/productpage through every stage on a local, real
// kube-apiserver with Istio's CRDs and prints what is live after each step: the
// newcomer's "it works" without a cluster. It builds what it needs on first use
// (cached outside the clone) and cleans up after itself.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/helm-canary/helm-canary/internal/localcluster"
)

const (
	namespace = "demo"
	release   = "productpage"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	root := repoRoot()
	step("Building bin/helm-canary")
	if err := sh(root, nil, "go", "build", "-o", "bin/helm-canary", "./cmd/helm-canary"); err != nil {
		return err
	}
	step("Starting a local kube-apiserver + etcd with Istio's CRDs (first run builds them: ~15 min)")
	cluster, err := localcluster.Start(ctx, localcluster.Options{Build: "all"})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	if err := cluster.CreateNamespace(ctx, namespace); err != nil {
		return err
	}
	home, err := os.MkdirTemp("", "helm-canary-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	env := append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"))
	helm := filepath.Join(cluster.BinDir(), "helm3")
	renderer := filepath.Join(root, "bin", "helm-canary")
	chart := filepath.Join(root, "examples", "productpage")

	walk := []struct{ stage, tag, what string }{
		{"stable", "83", "install tag 83; all traffic on production"},
		{"10", "84", "the chart now renders tag 84: it reaches only the canary, 10% of traffic"},
		{"90", "84", "90% on the canary"},
		{"100", "84", "all traffic on the canary; production still runs 83"},
		{"swap", "84", "production rolls to 84 while the canary serves"},
		{"final", "84", "traffic back on production (84), canary scaled to 0"},
	}
	for _, w := range walk {
		step(fmt.Sprintf("helm-canary stage %s: %s", w.stage, w.what))
		production := filepath.Join(home, "production.yaml")
		manifest, _ := output(root, env, helm, "get", "manifest", release, "-n", namespace)
		if err := os.WriteFile(production, manifest, 0o644); err != nil {
			return err
		}
		args := []string{"upgrade", "--install", release, chart, "-n", namespace, "--set", "image.tag=" + w.tag,
			"--post-renderer", renderer, "--post-renderer-args", "render", "--post-renderer-args", "--stage=" + w.stage}
		if len(bytes.TrimSpace(manifest)) > 0 {
			args = append(args, "--post-renderer-args", "--production-from="+production)
		}
		fmt.Printf("  $ helm %s\n", strings.Join(args, " "))
		if err := sh(root, env, helm, args...); err != nil {
			return err
		}
		if err := show(ctx, cluster); err != nil {
			return err
		}
	}
	step("Done: the API server and its data are removed")
	return nil
}

// show prints the live Deployments and the weights of the VirtualService.
func show(ctx context.Context, cluster *localcluster.Cluster) error {
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return err
	}
	deps, err := cs.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  DEPLOYMENT\tREPLICAS\tIMAGE")
	for _, d := range deps.Items {
		replicas := "-"
		if d.Spec.Replicas != nil {
			replicas = fmt.Sprint(*d.Spec.Replicas)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", d.Name, replicas, d.Spec.Template.Spec.Containers[0].Image)
	}
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return err
	}
	vs, err := dyn.Resource(schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}).
		Namespace(namespace).Get(ctx, "product-page-svc", metav1.GetOptions{})
	if err != nil {
		return err
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	var split []string
	for _, r := range routes {
		dests, _, _ := unstructured.NestedSlice(r.(map[string]any), "route")
		for _, d := range dests {
			subset, _, _ := unstructured.NestedString(d.(map[string]any), "destination", "subset")
			weight, _, _ := unstructured.NestedInt64(d.(map[string]any), "weight")
			if subset == "" {
				subset, weight = "(all pods)", 100
			}
			split = append(split, fmt.Sprintf("%s %d%%", subset, weight))
		}
	}
	fmt.Fprintf(tw, "  VirtualService product-page-svc:\t%s\n", strings.Join(split, ", "))
	return tw.Flush()
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func sh(dir string, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stdout, os.Stderr
	if env != nil {
		cmd.Env = env
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

func output(dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	return cmd.Output()
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
