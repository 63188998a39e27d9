package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// configV2 is test/charts/configured's version 2.0: a new image and new content in
// the web tier's ConfigMap, its Secret and the ConfigMap it shares with the worker;
// the envFrom ConfigMap's data stays.
var configV2 = []string{"--set", "image.tag=1.28", "--set", "config.greeting=hello from 2.0",
	"--set", "apiKey=key-2.0", "--set", "region=eu-central-1"}

// liveConfig reads what the pods would read: ConfigMap data, Secret data (never
// printed by the test either), "" when the object does not exist, with its
// resourceVersion.
func liveConfig(t *testing.T, ns, kind, name, key string) (value, version string) {
	t.Helper()
	c := clients(t).kube.CoreV1()
	switch kind {
	case "ConfigMap":
		cm, err := c.ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data[key], cm.ResourceVersion
	default:
		s, err := c.Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Data[key]), s.ResourceVersion
	}
}

// podsOf lists the names of a Deployment's pods (by its pod labels' track).
func podsOf(t *testing.T, ns, track string) []string {
	t.Helper()
	pods, err := clients(t).kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/name=web,helm-canary.io/track=" + track})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names
}

// canaryConfigNames reads which ConfigMap and Secret names the live canary's pod
// template reads.
func liveTemplateConfig(t *testing.T, ns, deployment string) (configMap, secret, shared string) {
	t.Helper()
	d, err := clients(t).kube.AppsV1().Deployments(ns).Get(t.Context(), deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	return spec.Volumes[0].ConfigMap.Name, spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name,
		spec.Volumes[1].Projected.Sources[0].ConfigMap.Name
}

// TestConfigWalk walks test/charts/configured from 1.0 to 2.0 with `helm canary
// stage`, under Helm 3 and 4, and reads the live ConfigMaps and Secrets: at 10
// production's objects are not even written (same resourceVersion, same pods) and
// the canary reads 2.0 from its copies; stable from 10 removes the copies; swap
// gives production 2.0 under the original names; final leaves only those.
func TestConfigWalk(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		chart := filepath.Join(h.checkout, "test", "charts", "configured")
		type want struct {
			greeting, key, region string // production's, under the original names
			copies                bool   // the canary's copies exist (with 2.0)
			canaryReads           string // the suffix of the names the canary reads
		}
		check := func(stage string, w want) {
			t.Helper()
			if got, _ := liveConfig(t, ns, "ConfigMap", "cfg-web", "app.conf"); got != "greeting = "+w.greeting+"\n" {
				t.Errorf("%s: ConfigMap cfg-web app.conf = %q, want %q", stage, got, w.greeting)
			}
			if got, _ := liveConfig(t, ns, "Secret", "cfg-web", "api-key"); got != w.key {
				t.Errorf("%s: Secret cfg-web api-key is not %s's", stage, w.key)
			}
			if got, _ := liveConfig(t, ns, "ConfigMap", "cfg-shared", "region"); got != w.region {
				t.Errorf("%s: ConfigMap cfg-shared region = %q, want %q", stage, got, w.region)
			}
			copyGreeting, _ := liveConfig(t, ns, "ConfigMap", "cfg-web-canary", "app.conf")
			copyKey, _ := liveConfig(t, ns, "Secret", "cfg-web-canary", "api-key")
			copyRegion, _ := liveConfig(t, ns, "ConfigMap", "cfg-shared-canary", "region")
			if w.copies {
				if copyGreeting != "greeting = hello from 2.0\n" || copyKey != "key-2.0" || copyRegion != "eu-central-1" {
					t.Errorf("%s: the canary's copies do not hold 2.0 (app.conf %q, region %q, api-key 2.0's: %v)", stage, copyGreeting, copyRegion, copyKey == "key-2.0")
				}
			} else if copyGreeting != "" || copyKey != "" || copyRegion != "" {
				t.Errorf("%s: the canary's copies are still there", stage)
			}
			if v, _ := liveConfig(t, ns, "ConfigMap", "cfg-web-env-canary", "LOG_LEVEL"); v != "" {
				t.Errorf("%s: a copy of cfg-web-env, whose data never changes", stage)
			}
			cm, secret, shared := liveTemplateConfig(t, ns, "cfg-web-canary")
			if cm != "cfg-web"+w.canaryReads || secret != "cfg-web"+w.canaryReads || shared != "cfg-shared"+w.canaryReads {
				t.Errorf("%s: the canary reads %s, %s, %s; want the names with %q", stage, cm, secret, shared, w.canaryReads)
			}
			cm, secret, shared = liveTemplateConfig(t, ns, "cfg-web")
			if cm != "cfg-web" || secret != "cfg-web" || shared != "cfg-shared" {
				t.Errorf("%s: production reads %s, %s, %s", stage, cm, secret, shared)
			}
		}
		v1 := want{"hello from 1.0", "key-1.0", "eu-west-1", false, ""}
		h.stage(t, ns, "stable", "cfg", chart, "--install", "--wait")
		check("stable", v1)
		_, cmVersion := liveConfig(t, ns, "ConfigMap", "cfg-web", "app.conf")
		_, secretVersion := liveConfig(t, ns, "Secret", "cfg-web", "api-key")
		pods := podsOf(t, ns, "production")

		h.stage(t, ns, append([]string{"10", "cfg", "--wait"}, configV2...)...)
		check("10", want{"hello from 1.0", "key-1.0", "eu-west-1", true, "-canary"})
		// Production's config objects were not written at all, its pods not replaced.
		if _, v := liveConfig(t, ns, "ConfigMap", "cfg-web", "app.conf"); v != cmVersion {
			t.Errorf("10: ConfigMap cfg-web was written (resourceVersion %s, was %s)", v, cmVersion)
		}
		if _, v := liveConfig(t, ns, "Secret", "cfg-web", "api-key"); v != secretVersion {
			t.Errorf("10: Secret cfg-web was written (resourceVersion %s, was %s)", v, secretVersion)
		}
		if got := podsOf(t, ns, "production"); !slices.Equal(got, pods) || len(got) == 0 {
			t.Errorf("10: production's pods %v, were %v", got, pods)
		}
		if n := len(podsOf(t, ns, "canary")); n == 0 {
			t.Errorf("10: no canary pods")
		}

		// Rollback from 10: the copies go, production as it was.
		h.stage(t, ns, "stable", "cfg")
		check("stable from 10", v1)
		if got := podsOf(t, ns, "production"); !slices.Equal(got, pods) {
			t.Errorf("stable from 10: production's pods %v, were %v", got, pods)
		}

		// The walk to final.
		h.stage(t, ns, append([]string{"10", "cfg"}, configV2...)...)
		check("10 again", want{"hello from 1.0", "key-1.0", "eu-west-1", true, "-canary"})
		for _, stage := range []string{"90", "100"} {
			h.stage(t, ns, stage, "cfg")
			check(stage, want{"hello from 1.0", "key-1.0", "eu-west-1", true, "-canary"})
		}
		canaryBefore, _ := getDeploymentVersion(t, ns, "cfg-web-canary")
		h.stage(t, ns, "swap", "cfg")
		check("swap", want{"hello from 2.0", "key-2.0", "eu-central-1", true, "-canary"})
		if canaryAfter, _ := getDeploymentVersion(t, ns, "cfg-web-canary"); !strings.EqualFold(canaryAfter.Images["web"], canaryBefore.Images["web"]) {
			t.Errorf("swap: the canary's image changed")
		}
		h.stage(t, ns, "final", "cfg", "--drain-time", "0s")
		check("final", want{"hello from 2.0", "key-2.0", "eu-central-1", false, ""})
	})
}
