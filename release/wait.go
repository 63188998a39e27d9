package release

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/helm-canary/helm-canary/canaried"
)

// waitRollout waits until every canaried Deployment of a manifest (production and
// canary) has rolled out, showing ready/total replicas per Deployment as it goes.
// It gives up at once when a Deployment reports that its rollout exceeded its
// progress deadline, and on either failure names the pods that are not ready and why.
func (c *Client) waitRollout(ctx context.Context, o StageOptions, manifest, track string) error {
	m, err := canaried.Read([]byte(manifest), c.Namespace)
	if err != nil {
		return err
	}
	var names []string
	for _, w := range m.Workloads(track) {
		names = append(names, w.Name, w.CanaryName())
	}
	cs, _, err := c.clients()
	if err != nil {
		return err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	// Polls come quickly at first, then once a second: pods that are ready a moment
	// after the upgrade (a warm-up's canary, whose next step waits for it) are seen
	// then, not a second later.
	interval := firstPoll
	for {
		var parts []string
		var pending, stuck []*appsv1.Deployment
		for _, name := range names {
			d, err := cs.AppsV1().Deployments(c.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("waiting for Deployment %s: %w", name, err)
			}
			want := d.Status.Replicas
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			ready := d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
				d.Status.ReadyReplicas == want && d.Status.Replicas == want
			part := fmt.Sprintf("%s %d/%d", name, d.Status.ReadyReplicas, want)
			if !ready {
				pending = append(pending, d)
				if d.Status.UpdatedReplicas != want {
					// Ready pods of the previous version are not the rollout.
					part += fmt.Sprintf(" (%d/%d updated)", d.Status.UpdatedReplicas, want)
				}
				if progressDeadlineExceeded(d) {
					stuck = append(stuck, d)
				}
			}
			parts = append(parts, part)
		}
		line := "ready: " + strings.Join(parts, ", ")
		if line != last {
			if o.Progress {
				fmt.Fprintf(c.Log, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(c.Log, line)
			}
			last = line
		}
		if len(pending) == 0 {
			if o.Progress {
				fmt.Fprintln(c.Log)
			}
			return nil
		}
		if len(stuck) > 0 {
			if o.Progress {
				fmt.Fprintln(c.Log)
			}
			var stuckNames []string
			for _, d := range stuck {
				stuckNames = append(stuckNames, d.Name)
			}
			return fmt.Errorf("the rollout of Deployment %s exceeded its progress deadline (%s)%s; the upgrade itself is done: fix the image or configuration and stage again, or `helm canary rollback %s`",
				strings.Join(stuckNames, ", "), line, notReadyPods(context.Background(), cs, c.Namespace, stuck), o.Release)
		}
		select {
		case <-ctx.Done():
			if o.Progress {
				fmt.Fprintln(c.Log)
			}
			return fmt.Errorf("timed out after %s waiting for the rollout (%s)%s; the upgrade itself is done, see `kubectl get pods -n %s`",
				timeout, line, notReadyPods(context.Background(), cs, c.Namespace, pending), c.Namespace)
		case <-time.After(interval):
		}
		interval = min(2*interval, maxPoll)
	}
}

// firstPoll and maxPoll bound the interval between waitRollout's reads: it doubles
// from the one to the other.
const (
	firstPoll = 100 * time.Millisecond
	maxPoll   = time.Second
)

func progressDeadlineExceeded(d *appsv1.Deployment) bool {
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing {
			return cond.Status == corev1.ConditionFalse && cond.Reason == "ProgressDeadlineExceeded"
		}
	}
	return false
}

// notReadyPods describes the pods of the Deployments (through their ReplicaSets'
// owner references: production's selector also matches canary pods) that are not
// ready, with the reason their Ready condition gives, as "; not ready: ...". Best
// effort: a failed lookup leaves the description out.
func notReadyPods(ctx context.Context, cs kubernetes.Interface, ns string, deployments []*appsv1.Deployment) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	owners := map[string]bool{}
	for _, d := range deployments {
		owners[string(d.UID)] = true
	}
	replicaSets, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	ofDeployment := map[string]bool{}
	for _, rs := range replicaSets.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && owners[string(ref.UID)] {
			ofDeployment[string(rs.UID)] = true
		}
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	var lines []string
	for _, p := range pods.Items {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || !ofDeployment[string(ref.UID)] || p.DeletionTimestamp != nil {
			continue
		}
		reason := string(p.Status.Phase)
		ready := false
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady {
				ready = cond.Status == corev1.ConditionTrue
				if cond.Message != "" {
					reason += ": " + cond.Message
				} else if cond.Reason != "" {
					reason += ": " + cond.Reason
				}
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
				reason += fmt.Sprintf(" (container %s: %s)", cs.Name, cs.State.Waiting.Reason)
			}
		}
		if !ready {
			image := ""
			if len(p.Spec.Containers) > 0 {
				image = ", image " + p.Spec.Containers[0].Image
			}
			lines = append(lines, fmt.Sprintf("pod %s (%s%s)", p.Name, reason, image))
		}
	}
	if len(lines) == 0 {
		return ""
	}
	sort.Strings(lines)
	return "; not ready: " + strings.Join(lines, "; ")
}
