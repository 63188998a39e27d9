package renderer

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// statefulReason says why a Deployment must not get a second copy of its pods
// (hazard 11), or "" when nothing says so. A canary is the same pod template with
// other labels: it mounts the same volumes. Two signs in the manifests:
//   - a PersistentVolumeClaim of the release, ReadWriteOnce or ReadWriteOncePod,
//     mounted by the pod template: two writers on one volume, or a Multi-Attach
//     error as soon as the canary lands on another node;
//   - strategy Recreate: the chart says two versions of the pods must never run at
//     once, which is what a canary is.
func (r *release) statefulReason(dep *deployment, n *yaml.RNode) (string, error) {
	var reasons []string
	if t := lookup(n.YNode(), "spec", "strategy", "type"); t != nil && t.Value == "Recreate" {
		reasons = append(reasons, "strategy Recreate: two versions of its pods must never run at once")
	}
	volumes := lookup(n.YNode(), "spec", "template", "spec", "volumes")
	if volumes == nil {
		return strings.Join(reasons, "; "), nil
	}
	for _, v := range volumes.Content {
		claim := lookup(v, "persistentVolumeClaim", "claimName")
		if claim == nil || claim.Value == "" {
			continue
		}
		modes, err := r.claimAccessModes(claim.Value, dep.ns)
		if err != nil {
			return "", err
		}
		for _, m := range []string{"ReadWriteOnce", "ReadWriteOncePod"} {
			if slices.Contains(modes, m) {
				reasons = append(reasons, fmt.Sprintf("it mounts the %s PersistentVolumeClaim %s", m, claim.Value))
				break
			}
		}
	}
	return strings.Join(reasons, "; "), nil
}

// claimAccessModes reads the access modes of a PersistentVolumeClaim of the stream;
// nil when the stream has no claim of that name (it was made outside the release,
// and nothing here says how it can be mounted).
func (r *release) claimAccessModes(name, ns string) ([]string, error) {
	for _, d := range r.claimDocs {
		if d.name != "" && d.name != name {
			continue
		}
		n, err := d.parse()
		if err != nil {
			return nil, err
		}
		if n == nil || n.GetName() != name || !sameNamespace(d.ns, ns) {
			continue
		}
		var modes []string
		if list := lookup(n.YNode(), "spec", "accessModes"); list != nil {
			for _, m := range list.Content {
				modes = append(modes, m.Value)
			}
		}
		return modes, nil
	}
	return nil, nil
}

// checkStateful leaves a stateful Deployment alone by default, with a warning, and
// refuses one named as a workload unless forced. It reports whether to canary it.
func (r *release) checkStateful(dep *deployment, n *yaml.RNode) (bool, error) {
	reason, err := r.statefulReason(dep, n)
	if err != nil || reason == "" {
		return err == nil, err
	}
	if r.explicit == nil {
		r.warnf("Deployment %s is not canaried: %s, and a canary would run next to production on the same volume; to canary it anyway, name it with --workload and --force-stateful", dep.name, reason)
		return false, nil
	}
	if r.opts.forceStateful(dep.name) {
		r.warnf("Deployment %s is canaried although %s (forced)", dep.name, reason)
		return true, nil
	}
	return false, fmt.Errorf("Deployment %s is stateful: %s. Its canary would run the same pod template next to production, on the same volume (two writers, or a Multi-Attach error when it lands on another node), so helm-canary does not canary it: drop it from --workload, or pass --force-stateful (canary.workloads.%s.forceStateful: true) if it can take a second copy of itself",
		dep.name, reason, dep.name)
}
