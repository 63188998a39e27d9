package renderer

import (
	"encoding/json"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// The direct conversion must give exactly what the types' own JSON marshalers give.
func TestProtoNodeMatchesJSON(t *testing.T) {
	msgs := []proto.Message{
		&networking.VirtualService{
			Hosts:    []string{"reviews"},
			Gateways: []string{"mesh"},
			Http: []*networking.HTTPRoute{{
				Name: "jason",
				Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{
					"end-user": {MatchType: &networking.StringMatch_Exact{Exact: "jason"}},
					"cookie":   {MatchType: &networking.StringMatch_Regex{Regex: "^(.*?;)?(gray=true)(;.*)?$"}},
				}}},
				Route: []*networking.HTTPRouteDestination{
					{Destination: &networking.Destination{Host: "reviews", Subset: "production", Port: &networking.PortSelector{Number: 9080}}, Weight: 90},
					{Destination: &networking.Destination{Host: "reviews", Subset: "canary"}, Weight: 10},
				},
				Timeout:          durationpb.New(10e9),
				Retries:          &networking.HTTPRetry{Attempts: 3, RetryRemoteLocalities: wrapperspb.Bool(true)},
				MirrorPercentage: &networking.Percent{Value: 12.5},
			}},
		},
		&networking.DestinationRule{
			Host: "reviews",
			TrafficPolicy: &networking.TrafficPolicy{LoadBalancer: &networking.LoadBalancerSettings{
				LbPolicy: &networking.LoadBalancerSettings_Simple{Simple: networking.LoadBalancerSettings_LEAST_REQUEST}}},
			Subsets: []*networking.Subset{{Name: "canary", Labels: map[string]string{"b": "2", "a": "1"}}},
		},
	}
	for _, m := range msgs {
		js, err := m.(json.Marshaler).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var want any
		if err := json.Unmarshal(js, &want); err != nil {
			t.Fatal(err)
		}
		n, err := toNode(m)
		if err != nil {
			t.Fatal(err)
		}
		out, err := n.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			s, _ := yaml.Marshal(got)
			w, _ := yaml.Marshal(want)
			t.Errorf("direct conversion differs from JSON marshaler:\n got: %s\nwant: %s", s, w)
		}
	}
}
