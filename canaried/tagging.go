package canaried

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/helm-canary/helm-canary/renderer"
)

// UserTagger is a gateway filter that tags a share of users for the canary, as its
// annotations describe it.
type UserTagger struct {
	Kind, Name string
	// UserHeader carries the user id; TagHeader is set to the user's track.
	// Both are lower case, as HTTP/2 header names are.
	UserHeader, TagHeader string
	// Percent of users (by renderer.UserBucket) go to the canary.
	Percent int
}

// UserTaggers lists the manifest's user-tagging gateway filters.
func (m *Manifest) UserTaggers() ([]UserTagger, error) {
	var out []UserTagger
	for _, o := range m.Objects {
		if o.Kind != "EnvoyFilter" && o.Kind != "WasmPlugin" {
			continue
		}
		a := o.Node.GetAnnotations()
		if a[renderer.AnnotationUserHeader] == "" {
			continue
		}
		p, err := strconv.Atoi(a[renderer.AnnotationCanaryPercent])
		if err != nil {
			return nil, fmt.Errorf("%s %s: bad %s annotation: %w", o.Kind, o.Name, renderer.AnnotationCanaryPercent, err)
		}
		out = append(out, UserTagger{Kind: o.Kind, Name: o.Name, Percent: p,
			UserHeader: strings.ToLower(a[renderer.AnnotationUserHeader]), TagHeader: strings.ToLower(a[renderer.AnnotationTagHeader])})
	}
	return out, nil
}
