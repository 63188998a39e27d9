package localcluster

import (
	"context"
	"fmt"
	"os"
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// installCRDs applies the CRDs in path and waits until each is Established and each
// served version is in discovery: only then do creates and applies of its kinds
// succeed, and tests must not race that.
func (c *Cluster) installCRDs(ctx context.Context, path string) error {
	manifest, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	if err := c.Apply(ctx, "", manifest); err != nil {
		return fmt.Errorf("install CRDs from %s: %w", path, err)
	}
	objects, err := decodeManifest(manifest)
	if err != nil {
		return fmt.Errorf("install CRDs from %s: %w", path, err)
	}
	// plurals by group/version, to look for in discovery.
	want := map[string][]string{}
	var names []string
	for _, obj := range objects {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &crd); err != nil {
			return fmt.Errorf("install CRDs: CustomResourceDefinition %s: %w", obj.GetName(), err)
		}
		names = append(names, crd.Name)
		for _, v := range crd.Spec.Versions {
			if v.Served {
				gv := crd.Spec.Group + "/" + v.Name
				want[gv] = append(want[gv], crd.Spec.Names.Plural)
			}
		}
	}

	client, err := apiextensions.NewForConfig(c.config)
	if err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	err = c.waitFor(ctx, "Istio CRDs to be established", func() error {
		list, err := client.ApiextensionsV1().CustomResourceDefinitions().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		established := map[string]bool{}
		for _, crd := range list.Items {
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					established[crd.Name] = true
				}
			}
		}
		for _, name := range names {
			if !established[name] {
				return fmt.Errorf("CustomResourceDefinition %s not established", name)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = c.waitFor(ctx, "Istio resources in discovery", func() error {
		for gv, plurals := range want {
			list, err := c.client.Discovery().ServerResourcesForGroupVersion(gv)
			if err != nil {
				return fmt.Errorf("discovery of %s: %w", gv, err)
			}
			for _, plural := range plurals {
				if !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == plural }) {
					return fmt.Errorf("%s %s not in discovery yet", gv, plural)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The cached mapper may have looked before the CRDs were served.
	c.mapper.Reset()
	return nil
}
