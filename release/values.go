package release

import (
	"fmt"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/helm-canary/helm-canary/renderer"
	"github.com/helm-canary/helm-canary/stages"
)

// ValuesKey is the top-level values key that holds the canary state, so that
// `helm get values` shows where a release stands.
const ValuesKey = "canary"

// canaryConfig reads the canary: block of a release's user values. A release that
// has none (installed without helm-canary) is at stable.
func canaryConfig(values map[string]any) (renderer.Config, error) {
	block, ok := values[ValuesKey]
	if !ok || block == nil {
		return renderer.Config{}, nil
	}
	data, err := yaml.Marshal(block)
	if err != nil {
		return renderer.Config{}, err
	}
	c, err := renderer.ParseConfig(data)
	if err != nil {
		return renderer.Config{}, fmt.Errorf("the release's values have a %s: block helm-canary cannot read (%w); another chart value by that name?", ValuesKey, err)
	}
	return c, nil
}

func stateOf(c renderer.Config) (stages.State, error) {
	if c.Stage == "" {
		return stages.State{Stage: stages.Stable}, nil
	}
	s, err := stages.Parse(c.Stage)
	if err != nil {
		return stages.State{}, fmt.Errorf("the release's values say %s.stage %q: %w", ValuesKey, c.Stage, err)
	}
	return stages.State{Stage: s, Draining: c.Draining}, nil
}

// withCanary returns a copy of values with the canary: block replaced.
func withCanary(values map[string]any, c renderer.Config) (map[string]any, error) {
	data, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	var block map[string]any
	if err := yaml.Unmarshal(data, &block); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(values)+1)
	for k, v := range values {
		out[k] = v
	}
	out[ValuesKey] = block
	return out, nil
}

// mergeValues puts the command line's values over the release's: the reuse
// semantics of `helm upgrade --reuse-values`, where the newest word wins.
func mergeValues(base, overrides map[string]any) map[string]any {
	out := chartutil.CoalesceTables(deepCopy(overrides), deepCopy(base))
	if out == nil {
		out = map[string]any{}
	}
	return out
}

func deepCopy(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out[k] = deepCopy(sub)
		} else {
			out[k] = v
		}
	}
	return out
}

// options turns a canary block into renderer options for one step.
func options(c renderer.Config, production []byte) (renderer.Options, error) {
	var o renderer.Options
	if err := c.Apply(&o); err != nil {
		return o, err
	}
	o.ProductionManifest = production
	return o, nil
}

// validateValues checks values, minus the canary: block, against the chart's
// values.schema.json and its subcharts', as Helm does before rendering. Helm's own
// check is skipped (SkipSchemaValidation) for the upgrades helm-canary runs: a
// schema that forbids unknown keys at the top (additionalProperties: false, as
// cert-manager's and Istio's gateway chart's do) would refuse the block that holds
// the stage, while the user's own values must still meet the schema.
func validateValues(ch *chart.Chart, vals map[string]any) error {
	coalesced, err := chartutil.CoalesceValues(ch, withoutCanary(vals))
	if err != nil {
		return fmt.Errorf("values: %w", err)
	}
	if err := chartutil.ValidateAgainstSchema(ch, coalesced); err != nil {
		return fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s", err)
	}
	return nil
}
