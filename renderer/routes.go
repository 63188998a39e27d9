package renderer

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strings"

	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// extraRoute is a route helm-canary puts ahead of a weighted route: requests that
// match go to one subset whole (match rules, the sticky cookie, user-percentage
// tags).
type extraRoute struct {
	suffix  string // appended to the weighted route's name
	matches []*networking.HTTPMatchRequest
	subset  string
	// setCookie renews the sticky cookie on the way back (its Max-Age restarts).
	setCookie string
}

// live reports whether the workload's routing extras apply: the live stages
// (0..100, preview, swap), not stable, final or final's draining step.
func (w *workload) live() bool { return w.Stage.CanaryUp() && !w.Draining }

// extraRoutes are the workload's routes ahead of its weighted route at this stage.
func (r *release) extraRoutes(w *workload) []extraRoute {
	if !w.live() {
		return nil
	}
	var out []extraRoute
	if w.Sticky != nil {
		out = append(out, extraRoute{suffix: "sticky", subset: SubsetCanary, setCookie: w.stickyCookie(), matches: []*networking.HTTPMatchRequest{{
			Headers: map[string]*networking.StringMatch{"cookie": {MatchType: &networking.StringMatch_Regex{
				// Browsers send "a=1; b=2": allow the space after each semicolon.
				Regex: `^(.*?;\s*)?(` + regexp.QuoteMeta(w.Sticky.Cookie+"="+w.stickyValue()) + `)(;.*)?$`}}}}}})
	}
	if len(w.Match) > 0 {
		out = append(out, extraRoute{suffix: "match", subset: SubsetCanary, matches: w.Match})
	}
	if w.UserPercent != nil {
		tag := w.tagHeader()
		for _, side := range []string{SubsetCanary, SubsetProduction} {
			out = append(out, extraRoute{suffix: "users-" + side, subset: side, matches: []*networking.HTTPMatchRequest{{
				Headers: map[string]*networking.StringMatch{tag: {MatchType: &networking.StringMatch_Exact{Exact: side}}}}}})
		}
	}
	return out
}

// stickyValue identifies the canary version, so that a new canary does not inherit
// the users the previous one kept.
func (w *workload) stickyValue() string {
	h := fnv.New32a()
	h.Write([]byte(w.name + "\x00" + w.version))
	return fmt.Sprintf("%08x", h.Sum32())
}

// stickyCookie is the Set-Cookie value the canary's responses carry.
func (w *workload) stickyCookie() string {
	cookie := w.Sticky.Cookie + "=" + w.stickyValue() + "; Path=/"
	if w.Sticky.MaxAge > 0 {
		cookie += fmt.Sprintf("; Max-Age=%d", w.Sticky.MaxAge)
	}
	return cookie
}

// tagHeader is the request header the gateway filter sets for this workload.
func (w *workload) tagHeader() string {
	if w.UserPercent != nil && w.UserPercent.TagHeader != "" {
		return w.UserPercent.TagHeader
	}
	return TagHeaderPrefix + w.name + "." + w.ns
}

// TagHeaderPrefix starts every user-percentage tag header, so that one prefix
// propagates them all.
const TagHeaderPrefix = "x-canary-"

// withExtras returns the http routes with extra routes inserted before each weighted
// route (given by index), each a copy of the weighted route (timeouts, retries...)
// whose matches are the weighted route's ANDed with the extra's, sent whole to one
// subset.
func (r *release) withExtras(routes []*yaml.Node, weighted map[int]bool, w *workload, host string, port *yaml.Node) ([]*yaml.Node, error) {
	extras := r.extraRoutes(w)
	if len(extras) == 0 {
		return routes, nil
	}
	var out []*yaml.Node
	for i, route := range routes {
		if weighted[i] {
			for _, e := range extras {
				n, err := r.extraRouteNode(route, e, host, port)
				if err != nil {
					return nil, fmt.Errorf("workload %s: %w", w.name, err)
				}
				if n != nil {
					out = append(out, n)
				}
			}
		}
		out = append(out, route)
	}
	return out, nil
}

func (r *release) extraRouteNode(weighted *yaml.Node, e extraRoute, host string, port *yaml.Node) (*yaml.Node, error) {
	n := yaml.CopyYNode(weighted)
	uncomment(n) // the chart's comments describe its own route, not this one
	name := "helm-canary-" + e.suffix
	if v := field(n, "name"); v != nil && v.Value != "" {
		name = v.Value + "-" + e.suffix
	}
	setField(n, "name", stringNode(name))
	deleteField(n, "mirror")
	deleteField(n, "mirrorPercentage")
	matches, err := mergeMatches(field(n, "match"), e.matches)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", name, err)
	}
	if len(matches.Content) == 0 {
		return nil, nil // no request matches both the route and the extra: no route
	}
	setField(n, "match", matches)
	dest, err := toNode(&networking.HTTPRouteDestination{Destination: &networking.Destination{Host: host, Subset: e.subset}})
	if err != nil {
		return nil, err
	}
	if port != nil {
		setField(lookup(dest.YNode(), "destination"), "port", yaml.CopyYNode(port))
	}
	if e.setCookie != "" {
		h, err := toNode(&networking.Headers{Response: &networking.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": e.setCookie}}})
		if err != nil {
			return nil, err
		}
		setField(dest.YNode(), "headers", h.YNode())
	}
	setField(n, "route", &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq, Content: []*yaml.Node{dest.YNode()}})
	// Keep the key order readable: name and match first.
	reorder(n, "name", "match", "route")
	return n, nil
}

// decorateWeighted adds the sticky cookie to the canary destination's responses and
// the mirror to a weighted route.
func (r *release) decorateWeighted(route *yaml.Node, w *workload, host string, port *yaml.Node) error {
	if !w.live() {
		return nil
	}
	if w.Sticky != nil {
		for _, d := range field(route, "route").Content {
			if s := lookup(d, "destination", "subset"); s != nil && s.Value == SubsetCanary {
				h, err := toNode(&networking.Headers{Response: &networking.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": w.stickyCookie()}}})
				if err != nil {
					return err
				}
				setField(d, "headers", h.YNode())
			}
		}
	}
	if w.Mirror != nil && w.Mirror.Percent > 0 {
		m, err := toNode(&networking.Destination{Host: host, Subset: SubsetCanary})
		if err != nil {
			return err
		}
		if port != nil {
			setField(m.YNode(), "port", yaml.CopyYNode(port))
		}
		pct, err := toNode(&networking.Percent{Value: w.Mirror.Percent})
		if err != nil {
			return err
		}
		setField(route, "mirror", m.YNode())
		setField(route, "mirrorPercentage", pct.YNode())
	}
	return nil
}

// reorder moves keys to the front of a mapping, in the given order.
func reorder(m *yaml.Node, keys ...string) {
	rank := map[string]int{}
	for i, k := range keys {
		rank[k] = i - len(keys)
	}
	pairs := make([][2]*yaml.Node, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		pairs = append(pairs, [2]*yaml.Node{m.Content[i], m.Content[i+1]})
	}
	sort.SliceStable(pairs, func(i, j int) bool { return rank[pairs[i][0].Value] < rank[pairs[j][0].Value] })
	m.Content = m.Content[:0]
	for _, p := range pairs {
		m.Content = append(m.Content, p[0], p[1])
	}
}

var _ = strings.HasPrefix

func uncomment(n *yaml.Node) {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for _, c := range n.Content {
		uncomment(c)
	}
}
