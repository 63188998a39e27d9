package release

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helm-canary/helm-canary/canaried"
)

// waitRollout waits until every canaried Deployment of a manifest (production and
// canary) has rolled out, showing ready/total replicas per Deployment as it goes.
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
	for {
		var parts []string
		done := true
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
			if !ready {
				done = false
			}
			parts = append(parts, fmt.Sprintf("%s %d/%d", name, d.Status.ReadyReplicas, want))
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
		if done {
			if o.Progress {
				fmt.Fprintln(c.Log)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if o.Progress {
				fmt.Fprintln(c.Log)
			}
			return fmt.Errorf("timed out after %s waiting for the rollout (%s); the upgrade itself is done, see `kubectl get pods -n %s`", timeout, line, c.Namespace)
		case <-time.After(time.Second):
		}
	}
}
