package release

import (
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
