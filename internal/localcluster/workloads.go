package localcluster

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NeverReadyTag is an image tag the simulated kubelets never make Ready: a pod whose
// container image ends in ":never-ready" gets Running with a pod IP, but stays
// NotReady for as long as it lives. Tests use it as a canary that fails to come up.
const NeverReadyTag = "never-ready"

//go:embed kwok-never-ready.yaml
var neverReadyStage []byte

// Nodes are the simulated nodes pods are scheduled on: three, one per zone, so that
// charts spreading pods across hosts or zones schedule.
var Nodes = []string{"kwok-node-0", "kwok-node-1", "kwok-node-2"}

// nodeAnnotation marks the nodes kwok manages (and no other).
const nodeAnnotation = "kwok.x-k8s.io/node"

// startWorkloads starts what turns stored objects into running ones: the
// controller-manager (Deployments make ReplicaSets and Pods, EndpointSlices fill,
// Jobs complete, HPAs and garbage collection run), the scheduler, and kwok, which
// plays the kubelets of Nodes. It returns once the nodes are Ready and the
// controllers have shown they run.
func (c *Cluster) startWorkloads(ctx context.Context, kwokPort int) error {
	var err error
	c.controllerManager, err = c.startProcess("kube-controller-manager",
		"--kubeconfig", c.kubeconfig,
		"--leader-elect=false",
		"--controllers=*",
		"--service-account-private-key-file", filepath.Join(c.dir, "sa.key"),
		// The API server's self-signed serving certificate, published to every
		// namespace as kube-root-ca.crt.
		"--root-ca-file", filepath.Join(c.dir, "certs", "apiserver.crt"),
		"--bind-address", "127.0.0.1", "--secure-port", "0",
	)
	if err != nil {
		return err
	}
	c.scheduler, err = c.startProcess("kube-scheduler",
		"--kubeconfig", c.kubeconfig,
		"--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", "0",
	)
	if err != nil {
		return err
	}
	stages, err := os.ReadFile(filepath.Join(c.binDir, "kwok-stages.yaml"))
	if err != nil {
		return fmt.Errorf("start kwok: %w", err)
	}
	kwokConfig := filepath.Join(c.dir, "kwok-stages.yaml")
	if err := os.WriteFile(kwokConfig, append(append(stages, "\n---\n"...), neverReadyStage...), 0o600); err != nil {
		return fmt.Errorf("start kwok: %w", err)
	}
	c.kwok, err = c.startProcess("kwok",
		"--kubeconfig", c.kubeconfig,
		"--config", kwokConfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector", nodeAnnotation+"=fake",
		"--manage-nodes-with-label-selector=",
		"--server-address", "127.0.0.1:"+strconv.Itoa(kwokPort),
		// Leases keep the nodes alive: without them the node lifecycle controller
		// decides after ~50 s that the nodes are gone and marks every pod NotReady.
		"--node-lease-duration-seconds=40",
		// Off the service range (10.0.0.0/24), so pod and Service IPs never collide.
		"--cidr", "10.244.0.1/16",
	)
	if err != nil {
		return err
	}
	for i, name := range Nodes {
		if err := c.createNode(ctx, name, fmt.Sprintf("zone-%c", 'a'+i)); err != nil {
			return err
		}
	}
	err = c.waitFor(ctx, "the simulated nodes to be Ready", func() error {
		for _, name := range Nodes {
			node, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !nodeReady(node) {
				return fmt.Errorf("Node %s not Ready", name)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The service-account controller creating default/default shows the
	// controller-manager is up and reconciling.
	return c.waitFor(ctx, "the controller-manager", func() error {
		_, err := c.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

func (c *Cluster) createNode(ctx context.Context, name, zone string) error {
	// One cluster serves a whole test package, whose namespaces are not deleted
	// between tests: the e2e suite keeps ~400 pods. A kubelet's default 110 pods
	// per node left the later tests' pods Pending (and their stages waiting for
	// them); simulated pods cost the API server only, so the nodes are large.
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("8Ti"),
		corev1.ResourcePods:   resource.MustParse("2000"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{nodeAnnotation: "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname":      name,
				"kubernetes.io/os":            "linux",
				"kubernetes.io/arch":          "amd64",
				"topology.kubernetes.io/zone": zone,
				"type":                        "kwok",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	_, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("Node %s create: %w", name, err)
	}
	return nil
}

func nodeReady(node *corev1.Node) bool {
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}
