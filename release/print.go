package release

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"

	"github.com/helm-canary/helm-canary/canaried"
	"github.com/helm-canary/helm-canary/renderer"
)

// Formats are the -o values status and stage accept.
var Formats = []string{"table", "json", "yaml"}

// Write prints a status as a table, JSON or YAML.
func (s *Status) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	case "yaml":
		out, err := yaml.Marshal(s)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	case "table", "":
		return s.table(w)
	}
	return fmt.Errorf("output format %q: use one of %s", format, strings.Join(Formats, ", "))
}

func (s *Status) table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	stage := s.Stage
	if s.Draining {
		stage += drainingLabel(stage)
	}
	fmt.Fprintf(tw, "RELEASE\tNAMESPACE\tREVISION\tSTATUS\tSTAGE\n%s\t%s\t%d\t%s\t%s\n\n", s.Release, s.Namespace, s.Revision, s.Status, stage)
	if err := tw.Flush(); err != nil {
		return err
	}
	s.newer(w)
	m := s.Mesh
	switch {
	case m != nil && m.Error != "":
		fmt.Fprintf(w, "Routing objects: NOT READ, %s\nTraffic is not known (TRAFFIC ?).\n\n", m.Error)
	case m != nil:
		fmt.Fprintf(w, "Routing objects: release %s in the mesh cluster (%s), revision %d, %s, stage %s\n\n", m.Release, m.Cluster, m.Revision, m.Status, m.Stage)
	}
	if len(s.Workloads) == 0 {
		fmt.Fprintln(tw, "No canaried workloads: run `helm canary stage stable "+s.Release+"` to adopt the release.")
		return tw.Flush()
	}
	fmt.Fprintln(tw, "WORKLOAD\tSERVICE\tSTAGE\tTRAFFIC PROD/CANARY\tPROD READY/DESIRED\tCANARY READY/DESIRED\tPROD IMAGES\tCANARY IMAGES")
	for _, ws := range s.Workloads {
		auto := ""
		if ws.Autoscaled {
			auto = " (hpa)"
		}
		traffic := fmt.Sprintf("%d/%d", ws.Weights.Production, ws.Weights.Canary)
		if m != nil && m.Error != "" {
			traffic = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d%s\t%d/%d%s\t%s\t%s\n", ws.Name, ws.Service, ws.Stage,
			traffic, ws.Ready.Production, ws.Replicas.Production, auto,
			ws.Ready.Canary, ws.Replicas.Canary, auto, strings.Join(ws.Images.Production, ","), strings.Join(ws.Images.Canary, ","))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, ws := range s.Workloads {
		if portsWorthShowing(ws.Ports) {
			for _, p := range ws.Ports {
				fmt.Fprintf(w, "PORT %s %s\n", ws.Service, p)
			}
		}
	}
	for _, ws := range s.Workloads {
		if ws.Versions.Production == ws.Versions.Canary {
			// A selector reads the version label (or keepVersionLabels): render left it.
			fmt.Fprintf(w, "VERSION %s: production and canary pods both report version %s to Istio and Kiali (a selector reads the version label); dashboards tell them apart by workload: %s and %s%s\n",
				ws.Name, ws.Versions.Production, ws.Name, ws.Name, renderer.CanarySuffix)
		}
	}
	for _, ws := range s.Workloads {
		for _, d := range ws.Drift {
			fmt.Fprintf(w, "DRIFT %s: %s\n", ws.Name, d)
		}
	}
	return nil
}

// portsWorthShowing: one line per port when the TRAFFIC column does not tell the
// whole story, that is when a port is not split by its http route alone.
func portsWorthShowing(ports []canaried.PortSplit) bool {
	for _, p := range ports {
		if p.Route != "http" || p.Note != "" {
			return true
		}
	}
	return false
}

// newer says what a newer revision that is not deployed means for what runs.
func (s *Status) newer(w io.Writer) {
	n := s.Newer
	if n == nil {
		if s.Status != "" && s.Status != "deployed" {
			fmt.Fprintf(w, "No revision of %s is deployed: revision %d is %s. What runs is what it got to apply.\n\n", s.Release, s.Revision, s.Status)
		}
		return
	}
	what := "it"
	if n.Stage != "" {
		what = "its stage " + n.Stage
	}
	fmt.Fprintf(w, "Revision %d is %s, not deployed: %s is not what runs; the objects above are revision %d's as live.\n", n.Revision, n.Status, what, s.Revision)
	if n.Description != "" {
		fmt.Fprintf(w, "  Helm says: %s\n", n.Description)
	}
	if strings.HasPrefix(n.Status, "pending") {
		fmt.Fprintf(w, "  An operation is running on the release, or was interrupted; objects it already applied show as drift.\n")
	}
	fmt.Fprintln(w)
}

// drainingLabel names a draining step: final's first (traffic back on production)
// or the warm-up of new canary pods before a stage sends traffic to them.
func drainingLabel(stage string) string {
	if stage == "final" {
		return " (draining)"
	}
	return " (warming up)"
}
