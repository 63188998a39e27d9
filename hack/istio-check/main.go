// Command istio-check runs Istio's own checks over a multi-document YAML stream on
// stdin: the validation istiod's admission webhook runs on each Istio object
// (istio.io/istio/pkg/config/validation, through the schema of its kind) and the
// analyzers `istioctl analyze` runs over the objects together
// (istio.io/istio/pkg/config/analysis). It prints one JSON object,
// {"messages":[{"level","origin","code","object","message"}...]}, and exits 0 unless
// it could not run; judging the messages is the caller's business.
//
// It is its own module, built and cached by hack/testbin.sh, so that istio.io/istio
// and its dependencies stay out of helm-canary's go.mod and binary.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kubeyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/log"
)

type message struct {
	Level   string `json:"level"`  // Error, Warning or Info
	Origin  string `json:"origin"` // "validation" (istiod's webhook) or "analyze" (istioctl analyze)
	Code    string `json:"code,omitempty"`
	Object  string `json:"object"` // Kind namespace/name
	Message string `json:"message"`
}

func main() {
	namespace := flag.String("namespace", "default", "namespace of objects that name none (as helm and istioctl assume)")
	flag.Parse()
	// The analyzers log through Istio's scopes; stdout must stay one JSON document.
	opts := log.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	if err := log.Configure(opts); err != nil {
		fail(err)
	}
	for _, s := range log.Scopes() {
		s.SetOutputLevel(log.ErrorLevel)
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	messages, err := validate(input, *namespace)
	if err != nil {
		fail(err)
	}
	analyzed, err := analyze(input, *namespace)
	if err != nil {
		fail(err)
	}
	messages = append(messages, analyzed...)
	sort.SliceStable(messages, func(i, j int) bool { return messages[i].Object < messages[j].Object })
	if messages == nil {
		messages = []message{}
	}
	out, err := json.MarshalIndent(map[string]any{"messages": messages}, "", "  ")
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "istio-check:", err)
	os.Exit(2)
}

// validate runs, on every object of a kind Istio's control plane reads, the
// validation its admission webhook runs (the schema's ValidateConfig), as
// `istioctl validate` does.
func validate(input []byte, namespace string) ([]message, error) {
	reader := kubeyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(input)))
	var messages []message
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return messages, nil
		}
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		obj := map[string]any{}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		if len(obj) == 0 {
			continue
		}
		un := unstructured.Unstructured{Object: obj}
		gvk := un.GroupVersionKind()
		schema, ok := collections.Pilot.FindByGroupVersionAliasesKind(config.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind})
		if !ok {
			continue
		}
		ns := un.GetNamespace()
		if ns == "" {
			ns = namespace
		}
		name := gvk.Kind + " " + ns + "/" + un.GetName()
		spec, err := schema.NewInstance()
		if err != nil {
			return nil, err
		}
		data, err := json.Marshal(obj["spec"])
		if err != nil {
			return nil, err
		}
		if err := config.ApplyJSONStrict(spec, string(data)); err != nil {
			messages = append(messages, message{Level: "Error", Origin: "validation", Object: name, Message: "spec: " + err.Error()})
			continue
		}
		warning, err := schema.ValidateConfig(config.Config{
			Meta: config.Meta{
				GroupVersionKind: schema.GroupVersionKind(),
				Name:             un.GetName(),
				Namespace:        ns,
				Labels:           un.GetLabels(),
				Annotations:      un.GetAnnotations(),
			},
			Spec: spec,
		})
		for _, e := range unwrap(err) {
			messages = append(messages, message{Level: "Error", Origin: "validation", Object: name, Message: e.Error()})
		}
		for _, w := range unwrap(warning) {
			messages = append(messages, message{Level: "Warning", Origin: "validation", Object: name, Message: w.Error()})
		}
	}
}

// unwrap splits joined and multierror errors into one message each.
func unwrap(err error) []error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var all []error
		for _, e := range joined.Unwrap() {
			all = append(all, unwrap(e)...)
		}
		return all
	}
	return []error{err}
}

// analyze runs every analyzer `istioctl analyze` runs on files (with Istio's
// default ingress gateway added, as istioctl does without a cluster) over all the
// objects together.
func analyze(input []byte, namespace string) ([]message, error) {
	sa := local.NewSourceAnalyzer(analyzers.AllCombined(), resource.Namespace(namespace), resource.Namespace("istio-system"), nil)
	if err := sa.AddDefaultResources(); err != nil {
		return nil, err
	}
	if err := sa.AddReaderKubeSource([]local.ReaderSource{{Name: "stdin", Reader: bytes.NewReader(input)}}); err != nil {
		return nil, err
	}
	cancel := make(chan struct{})
	defer close(cancel)
	result, err := sa.Analyze(cancel)
	if err != nil {
		return nil, err
	}
	var messages []message
	for _, m := range result.Messages {
		object := ""
		if m.Resource != nil && m.Resource.Origin != nil {
			object = m.Resource.Origin.FriendlyName()
		}
		messages = append(messages, message{
			Level:   m.Type.Level().String(),
			Origin:  "analyze",
			Code:    m.Type.Code(),
			Object:  object,
			Message: m.String(),
		})
	}
	return messages, nil
}
