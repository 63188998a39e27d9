package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/postrender"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/canaried"
	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// Where the mesh's configuration lives in another cluster than the pods (Alibaba
// ASM's control plane, Istio's config cluster in the primary-remote and external
// control plane topologies), the routing objects of each stage (renderer.PartMesh)
// form a companion Helm release there, <release>-mesh by default, in the release's
// namespace: short host names in a VirtualService resolve in its own namespace, so
// the routing objects must live in the namespace of the Services they route to. The
// companion has Helm's history, locking and rollback; its chart holds the rendered
// routing objects as they are (nothing of it is templated again) and no hooks.
//
// Each stage is two upgrades, ordered so that no route points at pods that are not
// there: toward the canary (a weight, preview) the workload cluster first, then the
// routes to the new pods; away from it (stable, final) the routes first, then the
// pods they no longer reach; at swap the routes first when the canary pods run
// already (traffic moves onto them, then production rolls beneath no traffic), else
// the workloads first. Both parts are rendered from the same chart, values and
// stage, so running the same command again (or a rollback) after a failure between
// the two upgrades renders and applies both again: that is the repair.

// MeshTarget is what the command line says of the mesh cluster; empty fields fall
// back to the release's canary.meshCluster, then to the defaults.
type MeshTarget struct {
	Kubeconfig string
	Context    string
	Release    string
	// Timeout bounds every request to the mesh cluster, as WithTimeout does.
	Timeout time.Duration
}

// SetMesh tells the client where the mesh cluster is (flags, environment).
func (c *Client) SetMesh(t MeshTarget) { c.meshTarget = &t }

// meshSide is the mesh cluster of one release.
type meshSide struct {
	client  *Client
	release string
	where   string // the kubeconfig and context, for messages
	// last is the companion's newest revision (nil: not installed yet).
	last *helmrelease.Release
	// stored is what the workload release's values keep of the mesh cluster.
	stored renderer.MeshCluster
	diff   string // --dry-run: what the mesh release would change
	// restoreFrom is the companion revision whose routing objects a restore
	// re-applies (see planRestore).
	restoreFrom *helmrelease.Release
}

// useMesh resolves the mesh cluster of release name from the command line and the
// release's canary settings, connects and reads the companion release: a mesh
// cluster that cannot be reached stops the command before anything is applied.
// It returns nil when the release keeps everything in its own cluster.
func (c *Client) useMesh(name string, config renderer.Config) (*meshSide, error) {
	if c.mesh != nil {
		return c.mesh, nil
	}
	var t MeshTarget
	stored := config.MeshCluster
	if stored != nil {
		t.Kubeconfig, t.Context, t.Release = stored.Kubeconfig, stored.Context, stored.Release
	}
	flagged := false
	if f := c.meshTarget; f != nil {
		t.Timeout = f.Timeout
		for _, p := range []struct{ from, to *string }{{&f.Kubeconfig, &t.Kubeconfig}, {&f.Context, &t.Context}, {&f.Release, &t.Release}} {
			if *p.from != "" {
				*p.to = *p.from
			}
		}
		flagged = f.Kubeconfig != "" || f.Context != ""
	}
	if stored == nil && !flagged {
		return nil, nil
	}
	if t.Release == "" {
		t.Release = name + "-mesh"
	}
	if t.Kubeconfig == "" && t.Context == "" {
		return nil, fmt.Errorf("%w; nothing was changed", &MeshError{Release: t.Release, Namespace: c.Namespace,
			Err: fmt.Errorf("release %q keeps its routing objects in another cluster (companion release %q, canary.meshCluster in its values), and this command was not told where that cluster is: "+
				"pass --mesh-kubeconfig PATH and/or --mesh-context NAME (or set HELM_CANARY_MESH_KUBECONFIG / HELM_CANARY_MESH_CONTEXT)", name, t.Release)})
	}
	settings := cli.New()
	// The workload cluster's credentials and server from the environment are not
	// the mesh cluster's: only its kubeconfig and context say where it is.
	settings.KubeToken, settings.KubeAsUser, settings.KubeAsGroups, settings.KubeAPIServer = "", "", nil, ""
	settings.KubeCaFile, settings.KubeTLSServerName, settings.KubeInsecureSkipTLSVerify = "", "", false
	settings.KubeConfig, settings.KubeContext = t.Kubeconfig, t.Context
	settings.SetNamespace(c.Namespace)
	where := describeMesh(t)
	unreachable := func(err error) error {
		return fmt.Errorf("%w; nothing was changed", &MeshError{Cluster: where, Release: t.Release, Namespace: c.Namespace, Err: err})
	}
	client, err := New(settings, c.Log, WithTimeout(t.Timeout))
	if err != nil {
		return nil, unreachable(err)
	}
	m := &meshSide{client: client, release: t.Release, where: where,
		stored: renderer.MeshCluster{Release: t.Release}}
	if stored != nil {
		// Kept as the user wrote them; flags and the environment are per machine.
		m.stored.Kubeconfig, m.stored.Context = stored.Kubeconfig, stored.Context
	}
	last, err := client.last(t.Release)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, unreachable(err)
	default:
		m.last = last
	}
	c.mesh = m
	return m, nil
}

// MeshError is a mesh cluster that could not be read: not reachable, or not named
// (Cluster empty). Status reports the workload side without it.
type MeshError struct {
	Cluster, Release, Namespace string
	Err                         error
}

func (e *MeshError) Error() string {
	if e.Cluster == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("the mesh cluster (%s) could not be read: release %q, namespace %q: %v; check that it is reachable, or point --mesh-kubeconfig / --mesh-context (or HELM_CANARY_MESH_KUBECONFIG / HELM_CANARY_MESH_CONTEXT) at it",
		e.Cluster, e.Release, e.Namespace, e.Err)
}

func (e *MeshError) Unwrap() error { return e.Err }

func describeMesh(t MeshTarget) string {
	var parts []string
	if t.Kubeconfig != "" {
		parts = append(parts, "kubeconfig "+t.Kubeconfig)
	}
	if t.Context != "" {
		parts = append(parts, "context "+t.Context)
	}
	return strings.Join(parts, ", ")
}

// withMeshCluster records the mesh cluster in each step's canary block, so that
// status, a rollback and the next stage command know the routing objects live
// elsewhere (and refuse to run without being told where).
func (m *meshSide) withMeshCluster(plan *stagePlan) error {
	for i := range plan.Steps {
		s := &plan.Steps[i]
		mc := m.stored
		s.State = s.State.copy()
		s.State.MeshCluster = &mc
		vals, err := s.State.into(s.Values)
		if err != nil {
			return err
		}
		s.Values = vals
	}
	return nil
}

// splitRenderer post-renders as the release's mode does (or not at all), hands
// Helm the workload part and keeps the mesh part.
type splitRenderer struct {
	inner postrender.PostRenderer
	mesh  []byte
}

func (s *splitRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	out := in
	if s.inner != nil {
		var err error
		if out, err = s.inner.Run(in); err != nil {
			return nil, err
		}
	}
	w, mesh, err := renderer.SplitParts(out.Bytes())
	if err != nil {
		return nil, err
	}
	s.mesh = mesh
	return bytes.NewBuffer(w), nil
}

// meshFirst says which cluster a step changes first (see the package comment
// above): the mesh when traffic moves away from the canary, or onto canary pods
// that already run.
func meshFirst(prev canaryState, step stages.Step) bool {
	switch step.Stage {
	case stages.Stable, stages.Final:
		return true
	case stages.Swap:
		return canaryRuns(prev)
	}
	return false
}

// canaryRuns reports whether any workload's canary pods run in a state.
func canaryRuns(s canaryState) bool {
	if st, err := s.release(); err == nil && (st.Stage.CanaryUp() || st.Draining) {
		return true
	}
	for name := range s.Workloads {
		if st, err := s.workload(name); err == nil && (st.Stage.CanaryUp() || st.Draining) {
			return true
		}
	}
	return false
}

// upgradeStep is one step of a plan: one Helm upgrade, or with a mesh cluster the
// two, in the order that keeps traffic served.
// describeState says a canary block's stages for messages: the release's, and each
// workload's own ("stage stable; app-a at 90, app-c at final").
func describeState(s canaryState) string {
	out := "stage " + s.String()
	var own []string
	for _, name := range sortedKeys(s.Workloads) {
		if w := s.Workloads[name]; w.Stage != "" {
			at := name + " at " + w.Stage
			if w.Draining {
				at += " (draining)"
			}
			own = append(own, at)
		}
	}
	if len(own) > 0 {
		out += "; " + strings.Join(own, ", ")
	}
	return out
}

func (c *Client) upgradeStep(ctx context.Context, o StageOptions, plan *stagePlan, i int, expected *helmrelease.Release, pr postrender.PostRenderer) (*helmrelease.Release, error) {
	step := plan.Steps[i]
	if c.mesh == nil {
		return c.upgrade(ctx, o, expected, plan.Chart, step.Values, pr)
	}
	m := c.mesh
	prev, err := readState(plan.Current.Config)
	if err != nil {
		return nil, err
	}
	if i > 0 {
		prev = plan.Steps[i-1].State
	}
	title := fmt.Sprintf("stage %s%s", step.Stage, drainingNote(step.Stage, step.Draining))
	split := &splitRenderer{inner: pr}
	if o.DryRun {
		rel, err := c.upgrade(ctx, o, expected, plan.Chart, step.Values, split)
		if err != nil {
			return nil, err
		}
		before := ""
		if m.last != nil {
			before = m.client.asLive(ctx, m.last.Manifest)
		}
		m.diff += diffManifests(before, string(split.mesh), fmt.Sprintf("%s, mesh cluster (%s), release %s", title, m.where, m.release))
		return rel, nil
	}
	workloadState := func() string {
		return fmt.Sprintf("the workload cluster's release %q is at revision %d (%s)", plan.Release, expected.Version, describeState(prev))
	}
	if meshFirst(prev, step.Step) {
		fmt.Fprintf(c.Log, "%s: the routes first, in the mesh cluster (%s), then the workloads\n", title, m.where)
		// Render both parts without applying anything, then the routes first.
		dry := o
		dry.DryRun = true
		if _, err := c.upgrade(ctx, dry, expected, plan.Chart, step.Values, split); err != nil {
			return nil, err
		}
		meshRel, err := m.apply(ctx, o, plan.Chart, step.State, split.mesh, plan.Release, expected.Version+1)
		if err != nil {
			return nil, fmt.Errorf("%s: the mesh cluster's release %q (%s) failed, so nothing was changed in the workload cluster (%s): %w; run the same command again",
				title, m.release, m.where, workloadState(), err)
		}
		rel, err := c.upgrade(ctx, o, expected, plan.Chart, step.Values, &splitRenderer{inner: pr})
		if err != nil {
			return nil, fmt.Errorf("%s is half applied: the mesh cluster's release %q (%s) is at revision %d (%s: its routes already send no traffic where this stage sends none), but the workload cluster's upgrade failed, so %s: %w; "+
				"run the same command again to finish it, or `helm canary rollback %s`", title, m.release, m.where, meshRel.Version, describeState(step.State), workloadState(), err, plan.Release)
		}
		return rel, nil
	}
	fmt.Fprintf(c.Log, "%s: the workloads first, then the routes, in the mesh cluster (%s)\n", title, m.where)
	rel, err := c.upgrade(ctx, o, expected, plan.Chart, step.Values, split)
	if err != nil {
		return nil, err
	}
	if _, err := m.apply(ctx, o, plan.Chart, step.State, split.mesh, plan.Release, rel.Version); err != nil {
		return nil, fmt.Errorf("%s is half applied: the workload cluster's release %q is at revision %d (%s), but the mesh cluster's release %q (%s) failed, so its routes are still %s: %w; "+
			"run the same command again to finish it, or `helm canary rollback %s`", title, plan.Release, rel.Version, describeState(step.State), m.release, m.where, m.routesNow(), err, plan.Release)
	}
	return rel, nil
}

// routesNow says what the mesh release's routes are, for a message.
func (m *meshSide) routesNow() string {
	if m.last == nil {
		return "not installed"
	}
	st, err := readState(m.last.Config)
	if err != nil {
		return fmt.Sprintf("revision %d's", m.last.Version)
	}
	return fmt.Sprintf("revision %d's (%s, %s)", m.last.Version, describeState(st), m.last.Info.Status)
}

// meshValues are the companion release's values: the canary block of the stage it
// is at, and the workload release and revision it goes with.
func meshValues(state canaryState, workloadRelease string, workloadRevision int) (map[string]any, error) {
	vals, err := state.into(map[string]any{})
	if err != nil {
		return nil, err
	}
	vals["workload"] = map[string]any{"release": workloadRelease, "revision": workloadRevision}
	return vals, nil
}

// meshChart is the companion release's chart: the rendered routing objects as a
// file that its one template prints as it is, so no template syntax in them is
// ever evaluated again.
func meshChart(src *chart.Chart, name string, manifest []byte) *chart.Chart {
	md := &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "helm-canary-mesh", Version: "0.1.0", Type: "application",
		Description: "The routing objects of a release whose mesh configuration lives in this cluster, applied by helm-canary"}
	if src != nil && src.Metadata != nil {
		md.Name, md.Version, md.AppVersion = src.Metadata.Name+"-mesh", src.Metadata.Version, src.Metadata.AppVersion
	}
	return &chart.Chart{
		Metadata:  md,
		Templates: []*chart.File{{Name: "templates/routing.yaml", Data: []byte(`{{ .Files.Get "routing.yaml" }}`)}},
		Files:     []*chart.File{{Name: "routing.yaml", Data: manifest}},
	}
}

// apply installs or upgrades the companion release to one stage's routing objects,
// then puts back any of them edited by hand (drift repair, as for the release).
func (m *meshSide) apply(ctx context.Context, o StageOptions, src *chart.Chart, state canaryState, manifest []byte, workloadRelease string, workloadRevision int) (*helmrelease.Release, error) {
	vals, err := meshValues(state, workloadRelease, workloadRevision)
	if err != nil {
		return nil, err
	}
	ch := meshChart(src, m.release, manifest)
	var rel *helmrelease.Release
	if m.last == nil || !m.deployedOnce() {
		in := action.NewInstall(m.client.cfg)
		in.ReleaseName, in.Namespace = m.release, m.client.Namespace
		in.CreateNamespace = true
		in.Replace = m.last != nil // a first install that failed
		in.Timeout = o.Timeout
		rel, err = in.RunWithContext(ctx, ch, vals)
	} else {
		up := action.NewUpgrade(m.client.cfg)
		up.Namespace = m.client.Namespace
		up.ResetValues = true
		up.Timeout = o.Timeout
		rel, err = up.RunWithContext(ctx, m.release, ch, vals)
	}
	if err != nil {
		return nil, fmt.Errorf("upgrade of release %q: %w", m.release, err)
	}
	m.last = rel
	fmt.Fprintf(m.client.Log, "Release %q in the mesh cluster (%s): revision %d, %s\n", m.release, m.where, rel.Version, describeState(state))
	repaired, err := m.client.repairDrift(ctx, rel)
	if err != nil {
		return rel, err
	}
	for _, r := range repaired {
		fmt.Fprintf(m.client.Log, "Repaired drift in the mesh cluster: %s had been changed outside the release; its spec is the release's again.\n", r)
	}
	return rel, nil
}

// deployedOnce reports whether the companion release has a revision Helm can
// upgrade from (an upgrade of a release whose only revisions failed is refused).
func (m *meshSide) deployedOnce() bool {
	h, err := m.client.cfg.Releases.History(m.release)
	if err != nil {
		return false
	}
	for _, r := range h {
		if r.Info != nil && (r.Info.Status == helmrelease.StatusDeployed || r.Info.Status == helmrelease.StatusSuperseded) {
			return true
		}
	}
	return false
}

// MeshStatus is the companion release in the mesh cluster, for status.
type MeshStatus struct {
	Cluster  string `json:"cluster"`
	Release  string `json:"release"`
	Revision int    `json:"revision,omitempty"`
	Status   string `json:"status"`
	Stage    string `json:"stage,omitempty"`
	// InStep is true when its routing objects are of the workload revision's stage.
	InStep bool `json:"inStep"`
	// Error says why the mesh cluster could not be read (Status "unreachable"):
	// the routing objects and the traffic split are then not known.
	Error string `json:"error,omitempty"`
	// state describes its canary block, per workload, for the drift message.
	state string
}

// meshStatus reads the companion release for status: its deployed revision's
// manifest (the routing objects to compare with what is live there) and whether it
// is at the workload revision's stage. nil when the release has no mesh cluster.
func (c *Client) meshStatus(rel *helmrelease.Release, config renderer.Config) (*MeshStatus, *helmrelease.Release, error) {
	m, err := c.useMesh(rel.Name, config)
	if err != nil || m == nil {
		return nil, nil, err
	}
	ms := &MeshStatus{Cluster: m.where, Release: m.release, Status: "not installed"}
	deployed, err := m.client.deployed(m.release)
	if errors.Is(err, ErrNotFound) {
		return ms, nil, nil
	}
	if err != nil {
		return nil, nil, &MeshError{Cluster: m.where, Release: m.release, Namespace: c.Namespace, Err: err}
	}
	ms.Revision, ms.Status = deployed.Version, deployed.Info.Status.String()
	meshConfig, err := canaryConfig(deployed.Config)
	if err != nil {
		return nil, nil, err
	}
	ms.Stage = meshConfig.Stage
	if ms.Stage == "" {
		ms.Stage = "stable"
	}
	ms.InStep = sameStage(config, meshConfig)
	ms.state = describeState(canaryState{meshConfig})
	return ms, deployed, nil
}

// sameStage compares two canary blocks as stages: everything but where the mesh is.
func sameStage(a, b renderer.Config) bool {
	a.MeshCluster, b.MeshCluster = nil, nil
	ya, errA := yaml.Marshal(a)
	yb, errB := yaml.Marshal(b)
	return errA == nil && errB == nil && reflect.DeepEqual(ya, yb)
}

// RoutingManifest is what `route` applies a request to: the release's deployed
// manifest, plus its companion release's routing objects when they live in a mesh
// cluster (set with SetMesh, or kept in the release's values).
func (c *Client) RoutingManifest(name string) ([]byte, error) {
	rel, err := c.deployed(name)
	if err != nil {
		return nil, err
	}
	config, err := canaryConfig(rel.Config)
	if err != nil {
		return nil, err
	}
	_, meshRel, err := c.meshStatus(rel, config)
	if me := (*MeshError)(nil); errors.As(err, &me) {
		return nil, fmt.Errorf("release %q: route reads its routing objects from the mesh cluster: %w", name, me)
	}
	if err != nil {
		return nil, err
	}
	if c.mesh == nil {
		return []byte(rel.Manifest), nil
	}
	if meshRel == nil {
		return nil, fmt.Errorf("release %q keeps its routing objects in the mesh cluster (%s), but its release %q is not there (namespace %q): run `helm canary stage` again to apply it", name, c.mesh.where, c.mesh.release, c.Namespace)
	}
	return []byte(rel.Manifest + "\n---\n" + meshRel.Manifest), nil
}

// prepareMesh resolves a planned command's mesh cluster, if the release has one,
// and records it in every step's canary block. A restore (Helm's rollback of a
// stored manifest) cannot render the mesh part again either: it re-applies the
// routing objects the companion release stored with the stable revision.
func (c *Client) prepareMesh(plan *stagePlan) error {
	m, err := c.useMesh(plan.Release, plan.Steps[0].State.Config)
	if err != nil || m == nil {
		return err
	}
	if plan.RestoreManifest {
		hist, err := c.cfg.Releases.History(plan.Release)
		if err != nil {
			return err
		}
		if err := m.planRestore(plan, revisionAfter(hist, plan.Base.Version)); err != nil {
			return err
		}
	}
	return m.withMeshCluster(plan)
}

// planRestore finds the companion revision whose routing objects went with the
// workload revision a restore re-applies (plan.Base), and checks that Base's
// manifest holds none of them: Helm's rollback re-applies it to the workload
// cluster as it is.
func (m *meshSide) planRestore(plan *stagePlan, next *helmrelease.Release) error {
	base := plan.Base
	refuse := func(why string) error {
		return fmt.Errorf("release %q keeps its routing objects in the mesh cluster (%s), and its stored chart cannot be rendered again (Helm stores no subcharts), so a rollback re-applies revision %d's stored manifest; but %s: name the chart, helm canary rollback %s CHART; nothing was changed",
			plan.Release, m.where, base.Version, why, plan.Release)
	}
	if _, mesh, err := renderer.SplitParts([]byte(base.Manifest)); err != nil || len(bytes.TrimSpace(mesh)) > 0 {
		return refuse("that manifest holds routing objects (it was made before they moved to the mesh cluster), which the workload cluster cannot take")
	}
	hist, err := m.client.cfg.Releases.History(m.release)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("reading release %q in the mesh cluster (%s): %w; nothing was changed", m.release, m.where, err)
	}
	if m.restoreFrom = routesOf(hist, base, next); m.restoreFrom == nil {
		return refuse(fmt.Sprintf("the mesh cluster's release %q has no revision that went with it", m.release))
	}
	return nil
}

// revisionAfter is the oldest revision newer than version, or nil.
func revisionAfter(history []*helmrelease.Release, version int) *helmrelease.Release {
	var next *helmrelease.Release
	for _, rel := range history {
		if rel.Version > version && (next == nil || rel.Version < next.Version) {
			next = rel
		}
	}
	return next
}

// routesOf is the companion revision that went with workload revision base: the
// one helm-canary recorded with it (values workload.revision), or else (the two
// releases upgraded by a pipeline, with no such record) the newest one at stable
// deployed before the workload revision that followed base (next, nil when base is
// the newest): in either order of a pipeline's two upgrades, the routes live
// while base was.
func routesOf(companion []*helmrelease.Release, base, next *helmrelease.Release) *helmrelease.Release {
	paired := newestRevision(companion, func(rel *helmrelease.Release, _ renderer.Config) bool {
		return toInt(dig(rel.Config, "workload", "revision")) == base.Version
	})
	if paired != nil {
		return paired
	}
	return newestRevision(companion, func(rel *helmrelease.Release, cfg renderer.Config) bool {
		if _, staged := rel.Config[ValuesKey]; staged && !isStable(rel, cfg) {
			return false
		}
		if _, ours := rel.Config["workload"]; ours {
			return false // paired with another workload revision
		}
		return next == nil || next.Info == nil || rel.Info.LastDeployed.Before(next.Info.LastDeployed)
	})
}

// meshSources points status at the mesh cluster for a release whose routing
// objects live there: the manifest gains the companion's routing objects, the
// routing objects are read from the mesh cluster, and a companion that is not at
// the workload revision's stage (a stage half applied) is drift.
func (c *Client) meshSources(rel *helmrelease.Release, config renderer.Config, m *canaried.Manifest, dyn dynamic.Interface) (*MeshStatus, *canaried.Manifest, dynamic.Interface, string, error) {
	ms, meshRel, err := c.meshStatus(rel, config)
	if err != nil || ms == nil {
		return nil, m, dyn, "", err
	}
	if _, dyn, err = c.mesh.client.clients(); err != nil {
		return nil, nil, nil, "", &MeshError{Cluster: ms.Cluster, Release: ms.Release, Namespace: c.Namespace, Err: err}
	}
	if meshRel == nil {
		return ms, m, dyn, fmt.Sprintf("the routing objects' release %q is not installed in the mesh cluster (%s): no route reaches this stage; run the same command again to apply it", ms.Release, ms.Cluster), nil
	}
	if m, err = canaried.Read([]byte(rel.Manifest+"\n---\n"+meshRel.Manifest), rel.Namespace); err != nil {
		return nil, nil, nil, "", err
	}
	drift := ""
	if !ms.InStep {
		drift = fmt.Sprintf("the mesh cluster's release %q (%s) is at revision %d (%s), not at this revision's %s: the routes live are that revision's; run the stage command again to finish it, or helm canary rollback %s",
			ms.Release, ms.Cluster, ms.Revision, ms.state, describeState(canaryState{config}), rel.Name)
	}
	return ms, m, dyn, drift, nil
}
