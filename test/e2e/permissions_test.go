package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// TestPermissions runs helm-canary as a user RBAC restricts (a ServiceAccount's
// token on the local API server, which authorizes with RBAC): with the README's
// Role (examples/rbac/helm-canary.yaml) the walk works, status included; without
// `update` on DestinationRules, an upgrade still deploys, but the drift repair after
// it is forbidden, and the error names the deployed revision and what is left to do.
func TestPermissions(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		role := exampleRole(t, ns)
		deployer := h.with("KUBECONFIG=" + serviceAccountKubeconfig(t, ns, "deployer"))
		deployer.stage(t, ns, "stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83")
		deployer.stage(t, ns, "10", "pp", "--set", "image.tag=84")
		deployer.mustRun(t, "canary", "status", "pp", "-n", ns)
		deployer.stage(t, ns, "10", "pp", "--dry-run")

		// The same Role without update on DestinationRules, and a DestinationRule
		// edited by hand (a field Helm never set, so no upgrade puts it back).
		for i, rule := range role.Rules {
			if len(rule.Resources) > 0 && rule.APIGroups[0] == "networking.istio.io" {
				role.Rules[i].Verbs = []string{"get", "list", "watch", "create", "patch", "delete"}
			}
		}
		if _, err := clients(t).kube.RbacV1().Roles(ns).Update(t.Context(), role, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		add := `{"spec":{"trafficPolicy":{"connectionPool":{"tcp":{"maxConnections":1}}}}}`
		if _, err := clients(t).dynamic.Resource(destinationRules).Namespace(ns).Patch(t.Context(), "product-page-svc", types.MergePatchType, []byte(add), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		_, stderr, err := deployer.run(t, "canary", "stage", "-n", ns, "90", "pp")
		if err == nil {
			t.Fatal("stage 90 without update on DestinationRules succeeded; the drift repair must have been refused")
		}
		last := h.lastRevision(t, "pp", ns)
		if last.Status != "deployed" {
			t.Fatalf("newest revision %+v, want the stage 90 upgrade deployed", last)
		}
		for _, want := range []string{
			fmt.Sprintf("revision %d of release \"pp\" is deployed (stage 90)", last.Revision),
			fmt.Sprintf("DestinationRule %s/product-page-svc", ns),
			"forbidden",
			"Left to do",
			"Grant update on destinationrules.networking.istio.io in namespace " + ns,
			"run the same command again",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("the forbidden repair's message lacks %q:\n%s", want, stderr)
			}
		}
		t.Logf("forbidden repair:\n%s", stderr)
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 10, "canary": 90})
	})
}

// exampleRole applies the README's example (the objects in the release namespace,
// renamed from shop to ns) and creates its ServiceAccount; it returns the Role.
func exampleRole(t *testing.T, ns string) *rbacv1.Role {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "rbac", "helm-canary.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kube := clients(t).kube
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var role *rbacv1.Role
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var head struct {
			Kind     string            `json:"kind"`
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatal(err)
		}
		if head.Metadata.Namespace != "shop" {
			continue // the gateway namespace's Role: no userPercent here
		}
		doc = strings.ReplaceAll(doc, "namespace: shop", "namespace: "+ns)
		switch head.Kind {
		case "Role":
			var r rbacv1.Role
			if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			if role, err = kube.RbacV1().Roles(ns).Create(t.Context(), &r, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		case "RoleBinding":
			var b rbacv1.RoleBinding
			if err := yaml.UnmarshalStrict([]byte(doc), &b); err != nil {
				t.Fatal(err)
			}
			if _, err := kube.RbacV1().RoleBindings(ns).Create(t.Context(), &b, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("examples/rbac/helm-canary.yaml: unexpected %s in namespace shop", head.Kind)
		}
	}
	if role == nil {
		t.Fatal("examples/rbac/helm-canary.yaml has no Role in namespace shop")
	}
	return role
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as a
// ServiceAccount, with a token from the TokenRequest API.
func serviceAccountKubeconfig(t *testing.T, ns, name string) string {
	t.Helper()
	tr, err := clients(t).kube.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for ServiceAccount %s/%s: %v", ns, name, err)
	}
	config := clientcmdapi.NewConfig()
	config.Clusters["local"] = &clientcmdapi.Cluster{Server: cluster.RESTConfig().Host, InsecureSkipTLSVerify: true}
	config.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	config.Contexts[name] = &clientcmdapi.Context{Cluster: "local", AuthInfo: name, Namespace: ns}
	config.CurrentContext = name
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		t.Fatal(err)
	}
	return path
}
