package istiocheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/helm-canary/helm-canary/internal/localcluster"
)

// Message is one finding of Istio's checks.
type Message struct {
	Level   string `json:"level"`  // Error, Warning or Info
	Origin  string `json:"origin"` // "validation" (istiod's webhook) or "analyze" (istioctl analyze)
	Code    string `json:"code"`   // the analyzer's code (IST0101...); empty for validation
	Object  string `json:"object"` // the object it is about
	Message string `json:"message"`
}

func (m Message) String() string {
	return fmt.Sprintf("%s (%s) %s: %s", m.Level, m.Origin, m.Object, m.Message)
}

// Allowance is a finding we accept, with the reason.
type Allowance struct {
	Code   string // the analyzer's code; empty for the webhook's validation
	Origin string // "validation" or "analyze"
	// Matches tells this finding from the code's others, from the message and the
	// other findings on the same object.
	Matches func(m Message, sameObject []Message) bool
	// OtherDomain: only for objects of a cluster whose DNS domain is not
	// cluster.local, which the analyzers assume.
	OtherDomain bool
	Why         string
}

// Allowed lists the findings we accept: the ones about the test setting, and the
// few that come with a documented choice of the renderer's (each says which).
// Anything else at Warning or Error is a problem.
var Allowed = []Allowance{
	{
		Code: "IST0101", Origin: "analyze",
		Matches: contains("Referenced gateway not found"),
		Why: "test setting: the release binds a Gateway it does not render (the mesh's ingress gateway, " +
			"or a team's); the checks see one release's objects, not the mesh",
	},
	{
		Code: "IST0132", Origin: "analyze",
		Matches: hostsOfAbsentGateway,
		Why: "test setting: the analyzer cannot see the hosts of a Gateway the release does not render " +
			"(the IST0101 above, on the same object, names it) and reports every host as missing from it",
	},
	{
		Code: "IST0101", Origin: "analyze", OtherDomain: true,
		Matches: contains("Referenced host+subset in destinationrule not found"),
		Why: "test setting: the analyzers resolve a short host name with the domain cluster.local " +
			"(istio's util.ConvertHostToFQDN), so in a cluster with another domain (--cluster-domain) a " +
			"route to a short name does not find the DestinationRule written for the FQDN istiod resolves it to",
	},
	{
		Origin:  "validation",
		Matches: contains("EnvoyFilter exposes internal implementation details"),
		Why: "renderer's choice: istiod warns on every EnvoyFilter; userPercent's gateway filter is one by " +
			"design (README, Routing beyond weights: the Lua filter that tags users), and nothing else renders one",
	},
	{
		Code: "IST0109", Origin: "analyze",
		Matches: conflictsWithItself,
		Why: "renderer's choice: a Service with a TLS port gets a VirtualService whose hosts are its short " +
			"name, name.ns, name.ns.svc and FQDN, because istiod's validation wants every sniHost among the hosts " +
			"and clients send any of them as SNI (renderer/ports.go, sniNames). The analyzer resolves the short " +
			"name to the FQDN and reports that one VirtualService as conflicting with itself; istiod drops the " +
			"duplicate domain",
	},
	{
		Origin:  "validation",
		Matches: contains(`(duplicate/overlapping match in rule "helm-canary-match")`, `-match")`),
		Why: "renderer's choice (seed 003): the chart's own route for exactly the requests a workload's " +
			"match rules send to the canary is kept, weighted, behind helm-canary's match route, so that it is " +
			"the chart's route again at stable; while the match route is there it shadows it",
	},
	{
		Code: "IST0130", Origin: "analyze",
		Matches: func(m Message, same []Message) bool {
			// Only the rule the allowance above explains: the webhook names the
			// match route that shadows it on the same object.
			for _, o := range same {
				if o.Origin == "validation" && strings.Contains(o.Message, "not used (duplicate/overlapping match in rule") &&
					(strings.Contains(o.Message, `"helm-canary-match"`) || strings.Contains(o.Message, `-match")`)) {
					return strings.Contains(m.Message, "not used (all matches used by prior rules)")
				}
			}
			return false
		},
		Why: "the analyzer's report of the rule the validation warning above explains",
	},
}

// contains matches a message holding any one of parts.
func contains(parts ...string) func(Message, []Message) bool {
	return func(m Message, _ []Message) bool {
		for _, p := range parts {
			if strings.Contains(m.Message, p) {
				return true
			}
		}
		return false
	}
}

// absentHosts reads IST0132's "not found in Gateway NS/NAME."
var absentHosts = regexp.MustCompile(`not found in Gateway (\S+)\.$`)

// hostsOfAbsentGateway: IST0132 about a Gateway that IST0101 reports not found on
// the same object.
func hostsOfAbsentGateway(m Message, same []Message) bool {
	sub := absentHosts.FindStringSubmatch(m.Message)
	if sub == nil {
		return false
	}
	for _, o := range same {
		if o.Code == "IST0101" && strings.Contains(o.Message, `Referenced gateway not found: "`+sub[1]+`"`) {
			return true
		}
	}
	return false
}

// selfConflict reads IST0109's "The VirtualServices A,B associated with": the
// conflict is one VirtualService's own when A and B are the same.
var selfConflict = regexp.MustCompile(`The VirtualServices (\S+) associated with`)

func conflictsWithItself(m Message, _ []Message) bool {
	sub := selfConflict.FindStringSubmatch(m.Message)
	if sub == nil {
		return false
	}
	names := strings.Split(sub[1], ",")
	for _, n := range names {
		if n != names[0] {
			return false
		}
	}
	return len(names) > 1
}

func allowed(m Message, all []Message, domain string) bool {
	var same []Message
	for _, o := range all {
		if o.Object == m.Object {
			same = append(same, o)
		}
	}
	for _, a := range Allowed {
		if a.OtherDomain && (domain == "" || domain == DefaultDomain) {
			continue
		}
		if m.Code == a.Code && m.Origin == a.Origin && a.Matches(m, same) {
			return true
		}
	}
	return false
}

var binary struct {
	once sync.Once
	path string
	err  error
}

// Binary builds (once per machine, cached) and returns the istio-check binary.
func Binary(ctx context.Context) (string, error) {
	binary.once.Do(func() {
		dir, err := localcluster.Binaries(ctx, "istio")
		binary.path, binary.err = filepath.Join(dir, "istio-check"), err
	})
	return binary.path, binary.err
}

// Run runs Istio's validation and analyzers over a multi-document YAML manifest;
// objects without a namespace are taken to be in namespace. It returns every
// finding, Info included.
func Run(ctx context.Context, manifest []byte, namespace string) ([]Message, error) {
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--namespace", namespace)
	cmd.Stdin = bytes.NewReader(manifest)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("istio-check: %w\n%s", err, stderr.String())
	}
	var out struct {
		Messages []Message `json:"messages"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("istio-check output: %w\n%s", err, stdout.String())
	}
	return out.Messages, nil
}

// DefaultDomain is the cluster DNS domain Istio's analyzers assume.
const DefaultDomain = "cluster.local"

// Problems is Run without Info findings and without the Allowed ones; domain is
// the cluster's DNS domain ("" for cluster.local).
func Problems(ctx context.Context, manifest []byte, namespace, domain string) ([]Message, error) {
	all, err := Run(ctx, manifest, namespace)
	if err != nil {
		return nil, err
	}
	var problems []Message
	for _, m := range all {
		if m.Level != "Info" && !allowed(m, all, domain) {
			problems = append(problems, m)
		}
	}
	return problems, nil
}

// Require fails t when Istio's checks find a problem in manifest; what names the
// manifest in the failure.
func Require(t testing.TB, what string, manifest []byte, namespace string) {
	t.Helper()
	RequireInDomain(t, what, manifest, namespace, DefaultDomain)
}

// RequireInDomain is Require for the objects of a cluster whose DNS domain is
// domain.
func RequireInDomain(t testing.TB, what string, manifest []byte, namespace, domain string) {
	t.Helper()
	problems, err := Problems(t.Context(), manifest, namespace, domain)
	if err != nil {
		t.Fatalf("Istio's checks on %s: %v", what, err)
	}
	if len(problems) > 0 {
		var lines []string
		for _, p := range problems {
			lines = append(lines, "  "+p.String())
		}
		t.Errorf("Istio's validation and analyzers find problems in %s:\n%s", what, strings.Join(lines, "\n"))
	}
}
