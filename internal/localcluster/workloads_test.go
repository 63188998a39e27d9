package localcluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

func kube(t *testing.T) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// eventually polls check every 200 ms for up to a minute; on timeout it fails with
// check's last error.
func eventually(t *testing.T, what string, check func(ctx context.Context) error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = check(ctx)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %v)", what, err, last)
	}
}

// TestVersion: the API server says which Kubernetes it is, so charts with a
// kubeVersion constraint install. A source build says v0.0.0-master unless told.
func TestVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver; not in -short mode")
	}
	v, err := kube(t).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.Major != "1" || !strings.HasPrefix(v.GitVersion, "v1."+v.Minor+".") {
		t.Errorf("server version = %+v, want v1.<minor>.<patch> with major 1 and that minor", v)
	}
}

func deployment(name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// TestDeploymentRollsOut: a Deployment gets a ReplicaSet and pods on the simulated
// nodes, they become Ready, and its Service's EndpointSlice lists them ready.
func TestDeploymentRollsOut(t *testing.T) {
	ns := namespace(t)
	client := kube(t)
	if _, err := client.AppsV1().Deployments(ns).Create(t.Context(), deployment("web", "web:1", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}
	if _, err := client.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, "Deployment web 3/3 ready", func(ctx context.Context) error {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.ReadyReplicas != 3 || d.Status.UpdatedReplicas != 3 {
			return fmt.Errorf("ready %d, updated %d", d.Status.ReadyReplicas, d.Status.UpdatedReplicas)
		}
		return nil
	})
	t.Logf("Deployment web 3/3 ready in %s", time.Since(start).Round(time.Millisecond))
	pods, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s: node %q, IP %q, phase %s; want scheduled, with an IP, Running", p.Name, p.Spec.NodeName, p.Status.PodIP, p.Status.Phase)
		}
	}
	eventually(t, "3 ready endpoints for Service web", func(ctx context.Context) error {
		slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return err
		}
		ready := 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready++
				}
			}
		}
		if ready != 3 {
			return fmt.Errorf("%d ready endpoints", ready)
		}
		return nil
	})
}

// TestNeverReady: an image tagged localcluster.NeverReadyTag runs but never becomes
// Ready, so a Deployment of it never rolls out.
func TestNeverReady(t *testing.T) {
	ns := namespace(t)
	client := kube(t)
	d := deployment("bad", "web:"+localcluster.NeverReadyTag, 2)
	if _, err := client.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 running pods of Deployment bad", func(ctx context.Context) error {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=bad"})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
				running++
			}
		}
		if running != 2 {
			return fmt.Errorf("%d running", running)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // long enough for the fast pod-ready stage to have acted
	got, err := client.AppsV1().Deployments(ns).Get(t.Context(), "bad", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.ReadyReplicas != 0 {
		t.Errorf("Deployment bad: %d ready replicas, want 0", got.Status.ReadyReplicas)
	}
}

// TestJobCompletes: a Job's pod runs to completion, so chart hooks finish.
func TestJobCompletes(t *testing.T) {
	ns := namespace(t)
	client := kube(t)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "migrate", Image: "migrate:1"}},
		}}},
	}
	if _, err := client.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Job migrate to complete", func(ctx context.Context) error {
		j, err := client.BatchV1().Jobs(ns).Get(ctx, "migrate", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if j.Status.Succeeded != 1 {
			return fmt.Errorf("succeeded %d, failed %d", j.Status.Succeeded, j.Status.Failed)
		}
		return nil
	})
}
