package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/helm-canary/helm-canary/internal/istiocheck"
)

// checkIstio runs Istio's own validation and analyzers over the deployed
// revision of every release in the namespace a successful `helm canary stage` or
// `rollback` just changed: what istiod's webhook and `istioctl analyze` would say
// of every stage the tests reach.
func checkIstio(t *testing.T, args []string) {
	t.Helper()
	i := slices.Index(args, "canary")
	if i < 0 || i+1 >= len(args) || (args[i+1] != "stage" && args[i+1] != "rollback") || slices.Contains(args, "--dry-run") {
		return
	}
	ns := "default"
	for j, a := range args {
		if (a == "-n" || a == "--namespace") && j+1 < len(args) {
			ns = args[j+1]
		} else if v, ok := strings.CutPrefix(a, "--namespace="); ok {
			ns = v
		}
	}
	secrets, err := clients(t).kube.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "owner=helm,status=deployed"})
	if err != nil {
		t.Fatalf("listing the deployed releases in %s: %v", ns, err)
	}
	for _, s := range secrets.Items {
		manifest, domain, err := releaseManifest(s.Data["release"])
		if err != nil {
			t.Fatalf("release Secret %s/%s: %v", ns, s.Name, err)
		}
		istiocheck.RequireInDomain(t, "release "+s.Labels["name"]+" revision "+s.Labels["version"]+" in "+ns+" (after helm "+strings.Join(args, " ")+")", []byte(manifest), ns, domain)
	}
}

// releaseManifest decodes Helm's stored release (base64 of gzipped JSON, Helm 3 and
// 4 alike) to its manifest and the cluster domain its canary: block names
// (istiocheck.DefaultDomain when none).
func releaseManifest(data []byte) (string, string, error) {
	raw, err := base64.StdEncoding.DecodeString(string(data))
	if err != nil {
		return "", "", err
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return "", "", err
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		return "", "", err
	}
	var rel struct {
		Manifest string `json:"manifest"`
		Config   struct {
			Canary struct {
				ClusterDomain string `json:"clusterDomain"`
			} `json:"canary"`
		} `json:"config"`
	}
	if err := json.Unmarshal(plain, &rel); err != nil {
		return "", "", err
	}
	domain := rel.Config.Canary.ClusterDomain
	if domain == "" {
		domain = istiocheck.DefaultDomain
	}
	return rel.Manifest, domain, nil
}
