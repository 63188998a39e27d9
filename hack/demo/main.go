// Command demo walks examples/productpage through every stage with `helm canary
// stage --wait` on a local cluster (a real kube-apiserver with Istio's CRDs, the
// controller-manager, the scheduler and simulated nodes), printing after each step
// the Deployments' ready counts and the pods of each track: the newcomer's "it
// works" without a cluster. It fails when a Deployment is not rolled out after a
// step. It builds what it needs on first use (cached outside the clone) and cleans
// up after itself.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	"github.com/helm-canary/helm-canary/internal/testhelm"
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
	step("Starting a local cluster: etcd, kube-apiserver with Istio's CRDs, controller-manager, scheduler, 3 simulated nodes (first run builds them: ~20 min)")
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
	env := append(os.Environ(), testhelm.HomeEnv(home, cluster.Kubeconfig())...)
	helm := filepath.Join(cluster.BinDir(), "helm3")
	chart := filepath.Join(root, "examples", "productpage")
	step("Installing the plugin: helm plugin install " + root)
	if err := sh(root, env, helm, "plugin", "install", root); err != nil {
		return err
	}

	walk := []struct {
		what string
		args []string
	}{
		{"install tag 83 at stable: all traffic on production", []string{"stable", release, chart, "--install", "--set", "image.tag=83"}},
		{"the chart now renders tag 84: it reaches only the canary, 10% of traffic", []string{"10", release, "--set", "image.tag=84"}},
		{"90% on the canary", []string{"90", release}},
		{"all traffic on the canary; production still runs 83", []string{"100", release}},
		{"production rolls to 84 while the canary serves", []string{"swap", release}},
		{"traffic back on production (84) first, then the canary scales to 0", []string{"final", release, "--drain-time", "1s"}},
		{"84 is the new stable; now a canary of tag 85, at 10%", []string{"10", release, "--set", "image.tag=85"}},
	}
	client, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return err
	}
	for _, w := range walk {
		step(fmt.Sprintf("helm canary stage %s: %s", w.args[0], w.what))
		args := append([]string{"canary", "stage", "-n", namespace}, w.args...)
		args = append(args, "--wait", "--timeout", "2m")
		fmt.Printf("  $ helm %s\n", strings.Join(args, " "))
		if err := sh(root, env, helm, args...); err != nil {
			return err
		}
		if err := showPods(ctx, client); err != nil {
			return err
		}
	}
	step("helm canary rollback: 85 misbehaves; production and all traffic back on the last stable version (84)")
	fmt.Printf("  $ helm canary rollback -n %s %s --wait\n", namespace, release)
	if err := sh(root, env, helm, "canary", "rollback", "-n", namespace, release, "--wait"); err != nil {
		return err
	}
	if err := showPods(ctx, client); err != nil {
		return err
	}
	step("helm get values " + release + ": the stage lives in the release")
	if err := sh(root, env, helm, "get", "values", release, "-n", namespace); err != nil {
		return err
	}
	step("Done: the API server and its data are removed")
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

// showPods prints each Deployment's ready/desired count and images, and the live
// pods per track, and fails when a Deployment has not rolled out: after
// `stage --wait` every one must have. Pods being deleted are shown as such, since
// the canary's go a moment after final.
func showPods(ctx context.Context, client kubernetes.Interface) error {
	deployments, err := client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("\n  %-22s %-7s %s\n", "DEPLOYMENT", "READY", "IMAGE")
	var notReady []string
	for _, d := range deployments.Items {
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		var images []string
		for _, c := range d.Spec.Template.Spec.Containers {
			images = append(images, c.Image)
		}
		fmt.Printf("  %-22s %-7s %s\n", d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want), strings.Join(images, ","))
		s := d.Status
		if s.ObservedGeneration < d.Generation || s.ReadyReplicas != want || s.UpdatedReplicas != want || s.Replicas != want {
			notReady = append(notReady, d.Name)
		}
	}
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	fmt.Printf("\n  %-40s %-11s %-7s %s\n", "POD", "TRACK", "READY", "IMAGE")
	for _, p := range pods.Items {
		ready := "no"
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = "yes"
			}
		}
		if p.DeletionTimestamp != nil {
			ready = "going"
		}
		fmt.Printf("  %-40s %-11s %-7s %s\n", p.Name, p.Labels["helm-canary.io/track"], ready, p.Spec.Containers[0].Image)
	}
	if len(notReady) > 0 {
		return fmt.Errorf("after --wait, Deployment %s has not rolled out", strings.Join(notReady, ", "))
	}
	return nil
}

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

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
