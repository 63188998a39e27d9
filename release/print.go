package release

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"

	"github.com/helm-canary/helm-canary/canaried"
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
		stage += " (draining)"
	}
	fmt.Fprintf(tw, "RELEASE\tNAMESPACE\tREVISION\tSTAGE\n%s\t%s\t%d\t%s\n\n", s.Release, s.Namespace, s.Revision, stage)
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d/%d%s\t%d/%d%s\t%s\t%s\n", ws.Name, ws.Service, ws.Stage,
			ws.Weights.Production, ws.Weights.Canary, ws.Ready.Production, ws.Replicas.Production, auto,
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
