package localcluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// FieldManager owns the fields Apply and DryRunApply write.
const FieldManager = "helm-canary-test"

// DryRunApply asks the API server whether every object of a multi-document YAML
// manifest would be accepted, storing nothing: a server-side apply with dryRun=All
// and fieldValidation=Strict. Schema and CEL errors, built-in validation and fields
// the schema does not declare all fail (server-side apply rejects undeclared fields
// at every validation level; Strict is what kubectl sends, and duplicate keys, the
// other thing it catches, are rejected while decoding because we send JSON).
// Namespaced objects without a namespace get namespace. The error joins one
// "Kind namespace/name apply: server message" per rejected object.
func (c *Cluster) DryRunApply(ctx context.Context, namespace string, manifest []byte) error {
	return c.apply(ctx, namespace, manifest, true)
}

// Apply is DryRunApply that stores the objects.
func (c *Cluster) Apply(ctx context.Context, namespace string, manifest []byte) error {
	return c.apply(ctx, namespace, manifest, false)
}

func (c *Cluster) apply(ctx context.Context, namespace string, manifest []byte, dryRun bool) error {
	objects, err := decodeManifest(manifest)
	if err != nil {
		return err
	}
	// Every object is tried, so one run reports every rejected object.
	var errs []error
	for _, obj := range objects {
		if err := c.applyObject(ctx, namespace, obj, dryRun); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Cluster) applyObject(ctx context.Context, namespace string, obj *unstructured.Unstructured, dryRun bool) error {
	gvk := obj.GroupVersionKind()
	mapping, err := c.restMapping(gvk)
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, objectKey(obj), err)
	}
	var resource dynamic.ResourceInterface = c.dynamic.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(namespace)
		}
		if obj.GetNamespace() == "" {
			return fmt.Errorf("%s %s: namespaced object without a namespace, and none given", gvk.Kind, obj.GetName())
		}
		resource = c.dynamic.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	} else {
		obj.SetNamespace("") // as kubectl does: meaningless on cluster-scoped objects
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, objectKey(obj), err)
	}
	// Patch, not dynamic's Apply: ApplyOptions cannot carry FieldValidation.
	opts := metav1.PatchOptions{
		FieldManager:    FieldManager,
		FieldValidation: metav1.FieldValidationStrict,
		// A test tool takes over fields another manager (helm) owns instead of
		// failing with a conflict.
		Force: ptr.To(true),
	}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := resource.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts); err != nil {
		return fmt.Errorf("%s %s apply: %w", gvk.Kind, objectKey(obj), err)
	}
	return nil
}

// restMapping maps a kind to its resource through cached discovery, refreshing the
// cache once when the kind is unknown: it may come from a CRD installed since.
func (c *Cluster) restMapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		mapping, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	return mapping, err
}

// decodeManifest splits a multi-document YAML stream into objects, skipping empty
// and comment-only documents (helm emits those for templates that render nothing).
func decodeManifest(manifest []byte) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var objects []*unstructured.Unstructured
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects, nil
		}
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		// Strict: a duplicate key would otherwise be silently collapsed here, before
		// the server's strict validation could see it.
		data, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		if string(bytes.TrimSpace(data)) == "null" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		if obj.GetName() == "" {
			return nil, fmt.Errorf("YAML document %d (%s): no metadata.name", i, obj.GetKind())
		}
		objects = append(objects, obj)
	}
}

func objectKey(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}
