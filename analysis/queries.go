package analysis

import (
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
)

// Target is what one workload's checks are about; its fields are the only data a
// custom query's template can use.
type Target struct {
	Namespace string
	// Workload is production's Deployment, Canary the canary's (<name>-canary).
	Workload, Canary string
	// Service is the Service routed to both.
	Service string
	// Interval is the checks' window as PromQL writes it ("2m").
	Interval string
}

// The built-in checks, by name.
const (
	CheckRequests      = "request-count"
	CheckSuccessRate   = "success-rate"
	CheckLatencyP99    = "latency-p99"
	CheckErrorRateDiff = "error-rate-vs-production"
	CheckLatencyRatio  = "latency-vs-production"
)

var builtinList = []string{CheckRequests, CheckSuccessRate, CheckLatencyP99, CheckErrorRateDiff, CheckLatencyRatio}

var builtinNames = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range builtinList {
		m[n] = true
	}
	return m
}()

// selector selects a workload's inbound requests as Istio reports them: by the
// server's sidecar (destination) or, in ambient mode, its waypoint.
func selector(namespace, workload string) string {
	return fmt.Sprintf(`reporter=~"destination|waypoint",destination_workload_namespace=%q,destination_workload=%q`, namespace, workload)
}

// RequestsQuery counts a workload's requests in the window.
func RequestsQuery(namespace, workload, window string) string {
	return fmt.Sprintf(`sum(increase(istio_requests_total{%s}[%s]))`, selector(namespace, workload), window)
}

// SuccessRateQuery is the percentage of a workload's requests that were not 5xx.
func SuccessRateQuery(namespace, workload, window string) string {
	sel := selector(namespace, workload)
	return fmt.Sprintf(`sum(rate(istio_requests_total{%s,response_code!~"5.."}[%s])) / sum(rate(istio_requests_total{%s}[%s])) * 100`, sel, window, sel, window)
}

// LatencyP99Query is a workload's 99th percentile request duration in milliseconds.
func LatencyP99Query(namespace, workload, window string) string {
	return fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{%s}[%s])))`, selector(namespace, workload), window)
}

// allowedFields are the data a custom query may use.
var allowedFields = map[string]bool{"Namespace": true, "Workload": true, "Canary": true, "Service": true, "Interval": true}

// parseQuery parses a custom query's template and refuses anything but text and
// the fields of Target: no functions, pipelines, variables or control flow, so
// nothing from values becomes code.
func parseQuery(name, query string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(query)
	if err != nil {
		return nil, fmt.Errorf("canary.analysis.checks %q: query template: %w", name, err)
	}
	if len(t.Templates()) > 1 {
		return nil, fmt.Errorf("canary.analysis.checks %q: a query defines no templates; it may only use {{.Namespace}}, {{.Workload}}, {{.Canary}}, {{.Service}} and {{.Interval}}", name)
	}
	for _, node := range t.Tree.Root.Nodes {
		switch n := node.(type) {
		case *parse.TextNode:
		case *parse.ActionNode:
			if !fieldOnly(n) {
				return nil, fmt.Errorf("canary.analysis.checks %q: %s: a query may only use {{.Namespace}}, {{.Workload}}, {{.Canary}}, {{.Service}} and {{.Interval}}", name, n)
			}
		default:
			return nil, fmt.Errorf("canary.analysis.checks %q: %s: a query may only use {{.Namespace}}, {{.Workload}}, {{.Canary}}, {{.Service}} and {{.Interval}}", name, node)
		}
	}
	return t, nil
}

func fieldOnly(n *parse.ActionNode) bool {
	p := n.Pipe
	if p == nil || len(p.Decl) > 0 || p.IsAssign || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
	return ok && len(f.Ident) == 1 && allowedFields[f.Ident[0]]
}

// Render fills a custom check's query for a target.
func (c Check) Render(t Target) (string, error) {
	tmpl, err := parseQuery(c.Name, c.Query)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, t); err != nil {
		return "", fmt.Errorf("canary.analysis.checks %q: %w", c.Name, err)
	}
	return b.String(), nil
}
