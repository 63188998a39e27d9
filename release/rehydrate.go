package release

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// Helm stores no subcharts with a release. One of them helm-canary can give back
// by itself: canary-lib, which ships with the plugin. A library-mode chart whose
// only missing dependency is canary-lib, at exactly the version the plugin carries,
// is rendered again from storage with the plugin's copy; any other dependency (or
// another canary-lib version) still needs CHART, or re-applies a stored manifest
// for a rollback.

// PluginLibraries loads the charts shipped with the plugin that releases may
// depend on (charts/canary-lib under the plugin directory Helm passes plugins as
// HELM_PLUGIN_DIR), by name. Nothing is returned outside a plugin.
func PluginLibraries(pluginDir string) map[string]*chart.Chart {
	if pluginDir == "" {
		return nil
	}
	dir := filepath.Join(pluginDir, "charts", libraryChart)
	if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil {
		return nil
	}
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil
	}
	return map[string]*chart.Chart{libraryChart: ch}
}

// withLibraries returns the stored chart with the missing dependencies that
// libraries has at the exact version the chart asks for (or locked), or the chart
// itself when there is nothing to add.
func withLibraries(stored *chart.Chart, libraries map[string]*chart.Chart) *chart.Chart {
	if stored == nil || stored.Metadata == nil || len(libraries) == 0 {
		return stored
	}
	loaded := map[string]bool{}
	for _, d := range stored.Dependencies() {
		loaded[d.Name()] = true
	}
	locked := map[string]string{}
	if stored.Lock != nil {
		for _, d := range stored.Lock.Dependencies {
			locked[d.Name] = d.Version
		}
	}
	var add []*chart.Chart
	for _, dep := range stored.Metadata.Dependencies {
		lib := libraries[dep.Name]
		if lib == nil || loaded[dep.Name] || lib.Metadata == nil {
			continue
		}
		want := dep.Version
		if v, ok := locked[dep.Name]; ok {
			want = v
		}
		if want != lib.Metadata.Version {
			continue // another version: its templates may render differently
		}
		add = append(add, lib)
	}
	if len(add) == 0 {
		return stored
	}
	out := *stored
	out.SetDependencies(append(stored.Dependencies(), add...)...)
	return &out
}

// Helm stores a release's chart without its subcharts: the loaded dependencies are
// an unexported field of chart.Chart, lost in the release's JSON, and Helm also
// rewrites the chart's own dependency list and values as it processes them
// (disabled ones dropped, aliases renamed, subchart defaults merged). So when a
// command names a chart that has dependencies, helm-canary keeps them with the
// release itself: one file in the stored chart's Files (dependenciesFile), gzipped
// JSON of the chart as it was loaded minus its templates and files (its metadata,
// lock and values before Helm's processing) and its whole dependency tree. A later
// command without CHART rebuilds the chart as loaded from that file and the stored
// templates, and renders it as if the chart had been named again: hooks run as for
// any upgrade, `helm get values` stays the user's values, and `helm rollback` (Helm 3
// or 4) copies the file with the chart like any other.
//
// Re-rendering the stored chart was chosen over re-applying the stored manifest
// through the post-renderer at the new stage: a manifest-built upgrade has no
// templates, so it would drop the chart's hooks from the new revision (and with them
// `helm uninstall`'s pre-delete hooks), and swap needs the chart's rendering of the
// new version for production. The file is kept under charts/, where Helm's own loader
// never puts a file (everything there is a subchart), so no template written for a
// chart loaded by Helm reads it.
const dependenciesFile = "charts/.helm-canary-dependencies.json.gz"

// maxDependenciesFile bounds what the file may add to a release, and
// maxStoredChart the chart with it, gzipped as Helm stores it (Helm's Secret and
// ConfigMap storage holds at most 1 MiB per revision: the release's JSON gzipped,
// then base64, the manifest included). Past either, the dependencies are not
// kept, so that naming CHART never fails for the size of what helm-canary adds:
// stages without CHART then ask for it.
const (
	maxDependenciesFile = 384 << 10
	maxStoredChart      = 512 << 10
)

// keptChart is a chart in the dependencies file: a chart.Chart encodes everything
// but its dependencies, which follow it.
type keptChart struct {
	*chart.Chart
	Dependencies []keptChart `json:"dependencies,omitempty"`
}

func keep(ch *chart.Chart) keptChart {
	k := keptChart{Chart: ch}
	for _, d := range ch.Dependencies() {
		k.Dependencies = append(k.Dependencies, keep(d))
	}
	return k
}

func (k keptChart) chart() *chart.Chart {
	ch := k.Chart
	var deps []*chart.Chart
	for _, d := range k.Dependencies {
		deps = append(deps, d.chart())
	}
	ch.SetDependencies(deps...)
	return ch
}

// withDependenciesKept returns a copy of a loaded chart that carries its
// dependencies in dependenciesFile, for Helm to store; the chart itself when it has
// none, or they are too large to keep. Call it before Helm processes the chart.
func withDependenciesKept(ch *chart.Chart) (*chart.Chart, error) {
	if ch == nil || ch.Metadata == nil || len(ch.Dependencies()) == 0 {
		return ch, nil
	}
	top := *ch
	top.Templates, top.Files, top.Schema, top.Raw = nil, nil, nil, nil
	top.SetDependencies()
	k := keep(ch)
	k.Chart = &top
	data, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("chart %s: keeping its dependencies with the release: %w", ch.Name(), err)
	}
	file, err := gzipped(data)
	if err != nil {
		return nil, err
	}
	if len(file) > maxDependenciesFile {
		return ch, nil
	}
	out := *ch
	out.Files = append(withoutDependenciesFile(ch.Files), &chart.File{Name: dependenciesFile, Data: file})
	out.SetDependencies(ch.Dependencies()...)
	// The chart as Helm will store it: its JSON, gzipped. Gzip adds at most a few
	// bytes per 64 KiB block to data it cannot compress (it stores such blocks), so
	// JSON well within the bound needs no compressing to know it fits.
	if data, err = json.Marshal(&out); err != nil {
		return nil, err
	}
	if len(data)+len(data)/1024+64 <= maxStoredChart {
		return &out, nil
	}
	stored, err := gzipped(data)
	if err != nil {
		return nil, err
	}
	if len(stored) > maxStoredChart {
		return ch, nil
	}
	return &out, nil
}

func gzipped(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// withDependenciesRestored rebuilds a stored chart as it was loaded, dependencies
// included, from its dependenciesFile; the stored chart itself when it has none
// (stored by plain helm, or before helm-canary kept them).
func withDependenciesRestored(stored *chart.Chart) (*chart.Chart, error) {
	if stored == nil {
		return nil, nil
	}
	var data []byte
	for _, f := range stored.Files {
		if f != nil && f.Name == dependenciesFile {
			data = f.Data
		}
	}
	if data == nil {
		return stored, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("chart %s: the dependencies kept with the release: %w", stored.Name(), err)
	}
	var k keptChart
	if err := json.NewDecoder(zr).Decode(&k); err != nil {
		return nil, fmt.Errorf("chart %s: the dependencies kept with the release: %w", stored.Name(), err)
	}
	if k.Chart == nil || k.Chart.Metadata == nil {
		return nil, fmt.Errorf("chart %s: the dependencies kept with the release have no chart metadata", stored.Name())
	}
	out := k.chart()
	// Templates, files and schema are stored once, in the release's chart; the file
	// stays among them so that the next revision keeps it too.
	out.Templates, out.Files, out.Schema = stored.Templates, stored.Files, stored.Schema
	return out, nil
}

func withoutDependenciesFile(files []*chart.File) []*chart.File {
	out := make([]*chart.File, 0, len(files)+1)
	for _, f := range files {
		if f != nil && f.Name != dependenciesFile {
			out = append(out, f)
		}
	}
	return out
}
