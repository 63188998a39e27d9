package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestCrossVersion: Helm 3 and Helm 4 store releases alike, so a release one CLI's
// plugin made is driven by the other's.
func TestCrossVersion(t *testing.T) {
	for _, order := range [][2]int{{3, 4}, {4, 3}} {
		t.Run(fmt.Sprintf("helm%d then helm%d", order[0], order[1]), func(t *testing.T) {
			t.Parallel()
			first, second := newHelmEnv(t, order[0]), newHelmEnv(t, order[1])
			ns := newNamespace(t)
			first.stage(t, ns, "stable", "pp", first.chartDir(), "--install", "--set", "image.tag=83")
			second.stage(t, ns, "10", "pp", "--set", "image.tag=84")
			wantImages(t, "productpage", getDeployment(t, ns, "productpage"), productpageImage+":83")
			wantImages(t, "productpage-canary", getDeployment(t, ns, "productpage-canary"), productpageImage+":84")
			wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})

			out := first.mustRun(t, "canary", "status", "pp", "-n", ns, "-o", "json")
			var st struct {
				Revision  int `json:"revision"`
				Workloads []struct {
					Stage   string         `json:"stage"`
					Weights map[string]int `json:"weights"`
					Images  struct {
						Production, Canary []string
					} `json:"images"`
				} `json:"workloads"`
			}
			if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Workloads) != 1 {
				t.Fatalf("helm%d canary status -o json: %v\n%s", order[0], err, out)
			}
			w := st.Workloads[0]
			// Revisions: 1 install, 2 the canary warming up with no traffic, 3 at 10.
			if st.Revision != 3 || w.Stage != "10" || w.Weights["canary"] != 10 ||
				strings.Join(w.Images.Canary, ",") != productpageImage+":84" || strings.Join(w.Images.Production, ",") != productpageImage+":83" {
				t.Errorf("helm%d canary status of the release helm%d staged: %s", order[0], order[1], out)
			}
			// Rolled back by the first CLI again.
			first.mustRun(t, "canary", "rollback", "pp", "-n", ns)
			wantImages(t, "productpage after rollback", getDeployment(t, ns, "productpage"), productpageImage+":83")
			wantReplicas(t, "productpage-canary after rollback", getDeployment(t, ns, "productpage-canary"), 0)
		})
	}
}

// TestGlobalFlags: Helm keeps its global flags (-n, --kube-context, --kubeconfig)
// for itself and hands them to the plugin as HELM_NAMESPACE, HELM_KUBECONTEXT and
// KUBECONFIG, wherever they are on the command line.
func TestGlobalFlags(t *testing.T) {
	bothHelms(t, func(t *testing.T, h *helmEnv, ns string) {
		// -n after the plugin's own arguments.
		h.mustRun(t, "canary", "stage", "stable", "pp", h.chartDir(), "--install", "--set", "image.tag=83", "-n", ns)
		if last := h.lastRevision(t, "pp", ns); last.Revision != 1 || last.Status != "deployed" {
			t.Errorf("stage ... -n %s: release pp in %s is %+v, want revision 1 deployed", ns, ns, last)
		}
		wantImages(t, "productpage", getDeployment(t, ns, "productpage"), productpageImage+":83")
		// --namespace before the plugin name, and HELM_NAMESPACE alone.
		if out := h.mustRun(t, "--namespace", ns, "canary", "status", "pp"); !strings.Contains(out, ns) {
			t.Errorf("helm --namespace %s canary status pp does not show the namespace:\n%s", ns, out)
		}
		if out := h.with("HELM_NAMESPACE="+ns).mustRun(t, "canary", "status", "pp"); !strings.Contains(out, ns) {
			t.Errorf("HELM_NAMESPACE=%s helm canary status pp does not show the namespace:\n%s", ns, out)
		}

		// A kubeconfig whose current context is a dead end, and whose context "other"
		// is the test cluster with ns as its namespace.
		config, err := clientcmd.LoadFromFile(cluster.Kubeconfig())
		if err != nil {
			t.Fatal(err)
		}
		local := config.Contexts[config.CurrentContext]
		config.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", InsecureSkipTLSVerify: true}
		config.Contexts["broken"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: local.AuthInfo, Namespace: ns}
		config.Contexts["other"] = &clientcmdapi.Context{Cluster: local.Cluster, AuthInfo: local.AuthInfo, Namespace: ns}
		config.CurrentContext = "broken"
		path := filepath.Join(t.TempDir(), "kubeconfig")
		if err := clientcmd.WriteToFile(*config, path); err != nil {
			t.Fatal(err)
		}
		k := h.with("KUBECONFIG=" + path)
		if _, _, err := k.run(t, "canary", "status", "pp", "-n", ns); err == nil {
			t.Errorf("helm canary status through the broken current context succeeded: the test proves nothing")
		}
		// The namespace comes from the context.
		k.mustRun(t, "canary", "stage", "10", "pp", "--set", "image.tag=84", "--kube-context", "other")
		wantImages(t, "productpage-canary after --kube-context other", getDeployment(t, ns, "productpage-canary"), productpageImage+":84")
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 90, "canary": 10})
		if out := k.mustRun(t, "--kube-context", "other", "canary", "status", "pp", "-n", ns); !strings.Contains(out, "90/10") {
			t.Errorf("helm --kube-context other canary status pp -n %s:\n%s", ns, out)
		}
		if out := k.with("HELM_KUBECONTEXT=other").mustRun(t, "canary", "status", "pp"); !strings.Contains(out, "90/10") {
			t.Errorf("HELM_KUBECONTEXT=other helm canary status pp:\n%s", out)
		}

		// --kubeconfig beats KUBECONFIG.
		k.mustRun(t, "canary", "stage", "90", "pp", "-n", ns, "--kubeconfig", cluster.Kubeconfig())
		wantWeights(t, ns, "product-page-svc", map[string]int64{"production": 10, "canary": 90})
	})
}
