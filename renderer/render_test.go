package renderer

import (
	"fmt"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// production runs at stable with tag 1.0; the chart now renders 2.0.
func productionManifest(t *testing.T) string {
	return render(t, appAt("1.0"), Options{Stage: mustStage(t, "stable")})
}

func TestStageTable(t *testing.T) {
	tests := []struct {
		stage                              string
		productionImage, canaryImage       string
		productionReplicas, canaryReplicas string
		production, canary                 string // weights
	}{
		{"stable", "repo/cart:1.0", "repo/cart:2.0", "3", "0", "100", "0"},
		{"10", "repo/cart:1.0", "repo/cart:2.0", "3", "3", "90", "10"},
		{"37", "repo/cart:1.0", "repo/cart:2.0", "3", "3", "63", "37"},
		{"90", "repo/cart:1.0", "repo/cart:2.0", "3", "3", "10", "90"},
		{"100", "repo/cart:1.0", "repo/cart:2.0", "3", "3", "0", "100"},
		{"swap", "repo/cart:2.0", "repo/cart:2.0", "3", "3", "0", "100"},
		{"final", "repo/cart:2.0", "repo/cart:2.0", "3", "0", "100", "0"},
	}
	pinned := productionManifest(t)
	for _, tt := range tests {
		t.Run(tt.stage, func(t *testing.T) {
			out := render(t, appAt("2.0"), Options{Stage: mustStage(t, tt.stage), ProductionManifest: []byte(pinned)})
			prod := find(t, out, "Deployment", "cart")
			canary := find(t, out, "Deployment", "cart-canary")
			wantField(t, prod, "spec.template.spec.containers[0].image", tt.productionImage)
			wantField(t, canary, "spec.template.spec.containers[0].image", tt.canaryImage)
			wantField(t, prod, "spec.replicas", tt.productionReplicas)
			wantField(t, canary, "spec.replicas", tt.canaryReplicas)
			// Hazard 1: the production selector never changes.
			wantField(t, prod, "spec.selector", "matchLabels:\n  app: cart")
			wantField(t, prod, "spec.template.metadata.labels", "app: cart\nhelm-canary.io/track: production")
			wantField(t, canary, "spec.selector", "matchLabels:\n  app: cart\n  helm-canary.io/track: canary")
			wantField(t, canary, "spec.template.metadata.labels", "app: cart\nhelm-canary.io/track: canary\nversion: canary")
			w := weights(t, find(t, out, "VirtualService", "cart-api"), 0)
			if w["production"] != tt.production || w["canary"] != tt.canary || len(w) != 2 {
				t.Errorf("weights = %v, want production %s canary %s", w, tt.production, tt.canary)
			}
			dr := find(t, out, "DestinationRule", "cart-api")
			wantField(t, dr, "spec.host", "cart-api")
			wantField(t, dr, "spec.subsets[0]", "labels:\n  app: cart\n  helm-canary.io/track: production\nname: production")
			wantField(t, dr, "spec.subsets[1]", "labels:\n  app: cart\n  helm-canary.io/track: canary\nname: canary")
		})
	}
}

func TestCanaryReplicasFlag(t *testing.T) {
	n := int32(1)
	out := render(t, appAt("2.0"), Options{Stage: mustStage(t, "10"), CanaryReplicas: &n})
	wantField(t, find(t, out, "Deployment", "cart-canary"), "spec.replicas", "1")
	wantField(t, find(t, out, "Deployment", "cart"), "spec.replicas", "3")
}

// Hazard 2: before production's pods carry the track label, no route may point at
// the production subset.
func TestAdoption(t *testing.T) {
	unlabeled := appAt("1.0") // deployed by plain Helm: no track label

	t.Run("stable keeps routing by host", func(t *testing.T) {
		out := render(t, appAt("1.0"), Options{Stage: mustStage(t, "stable"), ProductionManifest: []byte(unlabeled)})
		w := weights(t, find(t, out, "VirtualService", "cart-api"), 0)
		if len(w) != 1 || w["<host>"] != "" {
			t.Errorf("stable on an unlabeled production routes %v, want only the bare host", w)
		}
	})
	t.Run("stable without a production manifest routes by host", func(t *testing.T) {
		out := render(t, appAt("1.0"), Options{})
		if w := weights(t, find(t, out, "VirtualService", "cart-api"), 0); len(w) != 1 || w["<host>"] != "" {
			t.Errorf("routes %v, want only the bare host", w)
		}
	})
	t.Run("stable after production is labeled routes by subset", func(t *testing.T) {
		out := render(t, appAt("1.0"), Options{ProductionManifest: []byte(productionManifest(t))})
		if w := weights(t, find(t, out, "VirtualService", "cart-api"), 0); w["production"] != "100" || w["canary"] != "0" {
			t.Errorf("routes %v, want production 100 canary 0", w)
		}
	})
	for _, stage := range []string{"10", "90", "final"} {
		t.Run(stage+" is refused", func(t *testing.T) {
			err := renderErr(t, appAt("2.0"), Options{Stage: mustStage(t, stage), ProductionManifest: []byte(unlabeled)})
			for _, want := range []string{"Deployment cart", "helm-canary.io/track=production", "stage stable first"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
	t.Run("100 sends nothing to production and is allowed", func(t *testing.T) {
		render(t, appAt("2.0"), Options{Stage: mustStage(t, "100"), ProductionManifest: []byte(unlabeled)})
	})
}

// Hazard 7: untouched documents come out byte for byte, in order.
func TestUntouchedDocumentsPassThrough(t *testing.T) {
	config := "---\n# Source: shop/templates/cm.yaml\n# a comment the chart author wrote\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg   # trailing comment\ndata:\n  a: \"1\"\n  b:   'odd   spacing'\n"
	hook := "---\n# Source: shop/templates/job.yaml\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: smoke\n  annotations:\n    \"helm.sh/hook\": post-install\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: t, image: busybox}]\n"
	lonely := "---\n# Source: shop/templates/worker.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: worker\nspec:\n  selector: {matchLabels: {app: worker}}\n  template:\n    metadata: {labels: {app: worker}}\n    spec: {containers: [{name: w, image: repo/worker:1}]}\n"
	in := config + appAt("2.0") + hook + lonely
	out := render(t, in, Options{Stage: mustStage(t, "10")})
	if !strings.HasPrefix(out, config) {
		t.Errorf("ConfigMap not passed through verbatim:\n%s", out)
	}
	if !strings.Contains(out, hook) || !strings.HasSuffix(out, lonely) {
		t.Errorf("hook Job or the Deployment no Service selects changed:\n%s", out)
	}
	// Order: cm, service, cart, cart-canary, DR, VS, job, worker.
	var order []string
	for _, n := range objects(t, out) {
		order = append(order, n.GetKind()+"/"+n.GetName())
	}
	want := "ConfigMap/cfg Service/cart-api Deployment/cart Deployment/cart-canary DestinationRule/cart-api VirtualService/cart-api Job/smoke Deployment/worker"
	if strings.Join(order, " ") != want {
		t.Errorf("order = %v\nwant    %s", order, want)
	}
	// New documents point at the file of the Deployment they came from.
	if c := strings.Count(out, "# Source: shop/templates/cart.yaml\n"); c != 5 {
		t.Errorf("%d documents carry cart.yaml's Source comment, want 5 (Service, Deployment, canary, DR, VS)", c)
	}
}

func TestHelm4Annotations(t *testing.T) {
	in := `apiVersion: v1
kind: Service
metadata:
  name: cart-api
  annotations:
    postrenderer.helm.sh/postrender-filename: shop/templates/svc.yaml
spec:
  selector: {app: cart}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  annotations:
    postrenderer.helm.sh/postrender-filename: shop/templates/deploy.yaml
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: cart, image: repo/cart:2}]}
`
	out := render(t, in, Options{Stage: mustStage(t, "10")})
	for _, kn := range [][2]string{{"Deployment", "cart-canary"}, {"DestinationRule", "cart-api"}, {"VirtualService", "cart-api"}} {
		n := find(t, out, kn[0], kn[1])
		if got := n.GetAnnotations()[helm4FilenameAnnotation]; got != "shop/templates/deploy.yaml" {
			t.Errorf("%s %s filename annotation = %q, want the Deployment's file", kn[0], kn[1], got)
		}
	}
	if strings.Contains(out, "# Source:") {
		t.Errorf("Helm 4 input got Helm 3 Source comments:\n%s", out)
	}
}

// Hazard 5: a chart's own VirtualService and DestinationRule are merged, not doubled.
func TestMergeExistingRouting(t *testing.T) {
	routing := `---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: cart-rules
spec:
  host: cart-api.shop.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
  subsets:
  - name: v1
    labels: {app: cart}
  - name: canary
    labels: {stale: "true"}
  - name: legacy
    labels: {app: cart-legacy}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: cart-routes
spec:
  hosts:
  - cart-api.shop.svc.cluster.local
  gateways:
  - mesh
  - shop-gateway
  http:
  - name: jason
    match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: cart-api.shop.svc.cluster.local
        subset: legacy
  - name: mobile
    match:
    - headers:
        x-client:
          exact: mobile
    route:
    - destination:
        host: cart-api.shop.svc.cluster.local
        subset: v1
  - name: primary
    timeout: 10s
    retries:
      attempts: 3
    route:
    - destination:
        host: cart-api.shop.svc.cluster.local
        subset: v1
        port:
          number: 8080
`
	// The chart names its hosts by FQDN in the release's namespace, shop.
	pinned := render(t, appAt("1.0")+routing, Options{Namespace: "shop"})
	out := render(t, appAt("2.0")+routing, Options{Stage: mustStage(t, "10"), ProductionManifest: []byte(pinned), Namespace: "shop"})
	if c := count(t, out, "VirtualService"); c != 1 {
		t.Errorf("%d VirtualServices, want the chart's one", c)
	}
	if c := count(t, out, "DestinationRule"); c != 1 {
		t.Errorf("%d DestinationRules, want the chart's one", c)
	}
	dr := find(t, out, "DestinationRule", "cart-rules")
	wantField(t, dr, "spec.trafficPolicy.loadBalancer.simple", "LEAST_REQUEST")
	wantField(t, dr, "spec.subsets[0].name", "v1")
	wantField(t, dr, "spec.subsets[1].name", "canary")
	wantField(t, dr, "spec.subsets[1].labels", "app: cart\nhelm-canary.io/track: canary")
	wantField(t, dr, "spec.subsets[2].name", "legacy")
	wantField(t, dr, "spec.subsets[3].name", "production")

	vs := find(t, out, "VirtualService", "cart-routes")
	wantField(t, vs, "apiVersion", "networking.istio.io/v1beta1")
	wantField(t, vs, "spec.gateways", "- mesh\n- shop-gateway")
	wantField(t, vs, "spec.http[0].name", "jason")
	// A route to another Deployment's pods is left alone.
	wantField(t, vs, "spec.http[0].route[0].destination.subset", "legacy")
	wantField(t, vs, "spec.http[0].match[0].headers.end-user.exact", "jason")
	// Routes that reach cart's pods (subset v1 selects app=cart) follow the stage,
	// keeping their match, name, timeout, retries and port.
	wantField(t, vs, "spec.http[1].name", "mobile")
	wantField(t, vs, "spec.http[1].match[0].headers.x-client.exact", "mobile")
	if w := weights(t, vs, 1); w["production"] != "90" || w["canary"] != "10" {
		t.Errorf("mobile route weights = %v", w)
	}
	wantField(t, vs, "spec.http[2].name", "primary")
	wantField(t, vs, "spec.http[2].timeout", "10s")
	wantField(t, vs, "spec.http[2].retries.attempts", "3")
	for i, want := range [][2]string{{"production", "90"}, {"canary", "10"}} {
		p := fmt.Sprintf("spec.http[2].route[%d].", i)
		wantField(t, vs, p+"destination.host", "cart-api.shop.svc.cluster.local")
		wantField(t, vs, p+"destination.subset", want[0])
		wantField(t, vs, p+"destination.port.number", "8080")
		wantField(t, vs, p+"weight", want[1])
	}

	t.Run("stable before adoption leaves the chart's route alone", func(t *testing.T) {
		out := render(t, appAt("1.0")+routing, Options{Namespace: "shop"})
		wantField(t, find(t, out, "VirtualService", "cart-routes"), "spec.http[2].route[0].destination.subset", "v1")
	})
	t.Run("a VirtualService that never reaches the pods is reported", func(t *testing.T) {
		elsewhere := strings.ReplaceAll(routing, "subset: v1", "subset: legacy")
		res, err := Render([]byte(appAt("2.0")+elsewhere), Options{Stage: mustStage(t, "10"), Namespace: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "VirtualService cart-routes") {
			t.Errorf("warnings = %q, want one naming the VirtualService", res.Warnings)
		}
	})
}

// A gateway's VirtualService routes straight to the Service: its routes must follow
// the stage too, or ingress traffic would split by pod count.
func TestGatewayRoutesAreWeighted(t *testing.T) {
	gw := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop-ingress
spec:
  hosts: ["shop.example.com"]
  gateways: [shop-gateway]
  http:
  - match: [{uri: {prefix: /cart}}]
    route:
    - destination: {host: cart-api, port: {number: 8080}}
  - match: [{uri: {prefix: /pinned}}]
    route:
    - destination: {host: cart-api, subset: v1}
`
	out := render(t, appAt("2.0")+gw, Options{Stage: mustStage(t, "10")})
	vs := find(t, out, "VirtualService", "shop-ingress")
	if w := weights(t, vs, 0); w["production"] != "90" || w["canary"] != "10" {
		t.Errorf("gateway route weights = %v", w)
	}
	wantField(t, vs, "spec.http[0].route[1].destination.port.number", "8080")
	wantField(t, vs, "spec.http[1].route[0].destination.subset", "v1")
	if c := count(t, out, "VirtualService"); c != 2 {
		t.Errorf("%d VirtualServices, want the gateway's plus one for the mesh host", c)
	}
}

// Hazard 4: an autoscaled Deployment's canary gets its own autoscaler and neither
// manifest pins a replica count the autoscaler would fight.
func TestAutoscalerTwin(t *testing.T) {
	hpa := `---
# Source: shop/templates/hpa.yaml
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: cart
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: cart}
  minReplicas: 2
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
`
	for _, stage := range []string{"stable", "10", "swap", "final"} {
		t.Run(stage, func(t *testing.T) {
			out := render(t, appAt("2.0")+hpa, Options{Stage: mustStage(t, stage)})
			wantField(t, find(t, out, "Deployment", "cart"), "spec.replicas", "<none>")
			canary := find(t, out, "Deployment", "cart-canary")
			up := stage == "10" || stage == "swap"
			if up {
				wantField(t, canary, "spec.replicas", "<none>")
				twin := find(t, out, "HorizontalPodAutoscaler", "cart-canary")
				wantField(t, twin, "spec.scaleTargetRef.name", "cart-canary")
				wantField(t, twin, "spec.minReplicas", "2")
				wantField(t, find(t, out, "HorizontalPodAutoscaler", "cart"), "spec.scaleTargetRef.name", "cart")
				if !strings.Contains(out, "# Source: shop/templates/hpa.yaml\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: cart-canary") {
					t.Errorf("twin does not follow its origin's Source:\n%s", out)
				}
			} else {
				wantField(t, canary, "spec.replicas", "0")
				if c := count(t, out, "HorizontalPodAutoscaler"); c != 1 {
					t.Errorf("%d autoscalers at %s, want only production's", c, stage)
				}
			}
		})
	}
	t.Run("canary replicas become the twin's floor", func(t *testing.T) {
		n := int32(6)
		out := render(t, appAt("2.0")+hpa, Options{Stage: mustStage(t, "10"), CanaryReplicas: &n})
		twin := find(t, out, "HorizontalPodAutoscaler", "cart-canary")
		wantField(t, twin, "spec.minReplicas", "6")
		wantField(t, twin, "spec.maxReplicas", "6")
	})
}

func TestMultiContainerPods(t *testing.T) {
	withSidecar := func(tag string) string {
		return strings.Replace(appAt(tag), "      - name: cart\n", "      - name: log\n        image: repo/log:"+tag+"\n      - name: cart\n", 1)
	}
	pinned := render(t, withSidecar("1.0"), Options{})
	out := render(t, withSidecar("2.0"), Options{Stage: mustStage(t, "10"), ProductionManifest: []byte(pinned)})
	prod := find(t, out, "Deployment", "cart")
	canary := find(t, out, "Deployment", "cart-canary")
	wantField(t, prod, "spec.template.spec.containers[0].image", "repo/log:1.0")
	wantField(t, prod, "spec.template.spec.containers[1].image", "repo/cart:1.0")
	wantField(t, canary, "spec.template.spec.containers[0].image", "repo/log:2.0")
	wantField(t, canary, "spec.template.spec.containers[1].image", "repo/cart:2.0")
}

func TestNamedPorts(t *testing.T) {
	renamed := strings.Replace(appAt("2.0"), "        - name: http\n", "        - name: web\n", 1)
	err := renderErr(t, renamed, Options{Stage: mustStage(t, "10")})
	for _, want := range []string{"Service cart-api", `"http"`, "Deployment cart"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

const reviews = `---
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
` + `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
spec:
  selector: {matchLabels: {app: reviews, version: v1}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {containers: [{name: reviews, image: reviews:v1}]}
` + `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v2}
spec:
  selector: {matchLabels: {app: reviews, version: v2}}
  template:
    metadata: {labels: {app: reviews, version: v2}}
    spec: {containers: [{name: reviews, image: reviews:v2}]}
`

func TestServiceSelectingSeveralDeployments(t *testing.T) {
	// Sending all of reviews to reviews-v2's subsets would cut reviews-v1 off.
	t.Run("--workload picks one: refused without per-Deployment routes", func(t *testing.T) {
		err := renderErr(t, reviews, Options{Stage: mustStage(t, "10"), Workloads: []string{"reviews-v2"}})
		for _, want := range []string{"Service reviews selects the pods of Deployment reviews-v2 and also of reviews-v1", "cut reviews-v1 off", "DestinationRule subset of its own labels", "a Service of its own"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
	// Before production is labeled too: the cut-off is what the user must fix first.
	t.Run("--workload picks one: refused before the adoption check", func(t *testing.T) {
		err := renderErr(t, reviews, Options{Stage: mustStage(t, "10"), Workloads: []string{"reviews-v2"}, ProductionManifest: []byte(reviews)})
		if !strings.Contains(err.Error(), "cut reviews-v1 off") {
			t.Errorf("error %q, want the cut-off", err)
		}
	})
	routed := reviews + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: all, labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`
	t.Run("--workload picks one: the chart routes each Deployment by subset", func(t *testing.T) {
		res, err := Render([]byte(routed), Options{Stage: mustStage(t, "10"), Workloads: []string{"reviews-v2"}})
		if err != nil {
			t.Fatal(err)
		}
		out := string(res.Manifest)
		find(t, out, "Deployment", "reviews-v2-canary")
		if strings.Contains(out, "reviews-v1-canary") {
			t.Error("reviews-v1 was canaried too")
		}
		// The subsets keep to reviews-v2's pods; reviews-v1 keeps its route.
		wantField(t, find(t, out, "DestinationRule", "reviews"), "spec.subsets[4].labels",
			"app: reviews\nhelm-canary.io/track: canary\nversion: v2")
		vs := find(t, out, "VirtualService", "reviews")
		if w := weights(t, vs, 0); w["production"] != "90" || w["canary"] != "10" {
			t.Errorf("jason's route to v2: %v, want 90/10", w)
		}
		if w := weights(t, vs, 1); len(w) != 1 || w["v1"] != "" {
			t.Errorf("the default route to v1 changed: %v", w)
		}
	})
	for _, dest := range []string{"{host: reviews}", "{host: reviews, subset: all}"} {
		t.Run("--workload picks one: a route to "+dest+" is refused", func(t *testing.T) {
			in := strings.Replace(routed, "{destination: {host: reviews, subset: v1}}", "{destination: "+dest+"}", 1)
			err := renderErr(t, in, Options{Stage: mustStage(t, "10"), Workloads: []string{"reviews-v2"}})
			for _, want := range []string{"VirtualService reviews route http[1]", "Deployment reviews-v2 and also of reviews-v1", "cut reviews-v1 off"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
	t.Run("by default none is canaried, with a warning", func(t *testing.T) {
		res, err := Render([]byte(reviews), Options{Stage: mustStage(t, "10")})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Manifest) != reviews {
			t.Errorf("output changed:\n%s", res.Manifest)
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "--workload") {
			t.Errorf("warnings = %q", res.Warnings)
		}
	})
	t.Run("unlabeled production of a dropped Deployment is no error", func(t *testing.T) {
		res, err := Render([]byte(reviews), Options{Stage: mustStage(t, "10"), ProductionManifest: []byte(reviews)})
		if err != nil || string(res.Manifest) != reviews {
			t.Fatalf("err = %v; output changed: %v", err, string(res.Manifest) != reviews)
		}
	})
	t.Run("naming two is an error", func(t *testing.T) {
		err := renderErr(t, reviews, Options{Stage: mustStage(t, "10"), Workloads: []string{"reviews-v1", "reviews-v2"}})
		if !strings.Contains(err.Error(), "Service reviews") {
			t.Errorf("error %q does not name the Service", err)
		}
	})
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts Options
		want []string
	}{
		{name: "not YAML", in: "apiVersion: v1\nkind: [unclosed\n", want: []string{"document 1", "not valid YAML"}},
		{name: "not an object", in: "just some text\n", want: []string{"document 1", "not a Kubernetes object"}},
		{name: "no kind", in: "apiVersion: v1\nmetadata: {name: x}\n", want: []string{"no kind"}},
		{name: "empty", in: "\n---\n# nothing\n", want: []string{"no manifests"}},
		{name: "unknown workload", in: appAt("1"), opts: Options{Workloads: []string{"kart"}}, want: []string{`"kart"`, "Deployments: cart", "--workload"}},
		{name: "workload without Service", in: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: worker}\nspec:\n  selector: {matchLabels: {app: w}}\n  template: {metadata: {labels: {app: w}}, spec: {containers: [{name: w, image: w}]}}\n",
			opts: Options{Workloads: []string{"worker"}}, want: []string{"Deployment worker", "no Service", "app=w"}},
		{name: "bad track label", in: appAt("1"), opts: Options{TrackLabel: "-bad-"}, want: []string{"track label"}},
		{name: "negative canary replicas", in: appAt("1"), opts: Options{CanaryReplicas: new(int32(-1))}, want: []string{"canary replicas"}},
		{name: "bad production manifest", in: appAt("1"), opts: Options{ProductionManifest: []byte("kind: [")}, want: []string{"production manifest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := renderErr(t, tt.in, tt.opts)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Hazard 6: when the chart changes the labels the Service selects, the canary pods
// would get no traffic through the Service.
func TestServiceMustSelectBothSides(t *testing.T) {
	pinned := productionManifest(t)
	moved := strings.ReplaceAll(appAt("2.0"), "app: cart", "app: cart2")
	moved = strings.Replace(moved, "    app: cart2\n  ports", "    app: cart\n  ports", 1) // Service keeps app: cart
	// and so does the immutable selector (a change there is refused on its own).
	moved = strings.Replace(moved, "matchLabels:\n      app: cart2", "matchLabels:\n      app: cart", 1)
	err := renderErr(t, moved, Options{Stage: mustStage(t, "10"), ProductionManifest: []byte(pinned), Workloads: []string{"cart"}})
	if !strings.Contains(err.Error(), "Service cart-api") || !strings.Contains(err.Error(), "canary pods") {
		t.Errorf("error %q should say the Service misses the canary pods", err)
	}
}

// With named workloads, documents that cannot matter are never parsed, so a
// malformed one that Helm would reject anyway does not cost a parse.
func TestNamedWorkloadsSkipUnrelatedDocuments(t *testing.T) {
	junk := "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: junk\ndata: {a: [\n"
	out := render(t, appAt("2.0")+junk, Options{Stage: mustStage(t, "10"), Workloads: []string{"cart"}})
	if !strings.HasSuffix(out, junk) {
		t.Errorf("unrelated document not passed through")
	}
}

func TestConfig(t *testing.T) {
	c, err := ParseConfig([]byte("image: {tag: 2}\ncanary:\n  stage: \"90\"\n  canaryReplicas: 1\n  trackLabel: example.com/track\n  workloads:\n    cart: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var o Options
	if err := c.Apply(&o); err != nil {
		t.Fatal(err)
	}
	if o.Stage.String() != "90" || *o.CanaryReplicas != 1 || o.TrackLabel != "example.com/track" || strings.Join(o.Workloads, ",") != "cart" {
		t.Errorf("options = %+v", o)
	}
	if _, err := ParseConfig([]byte("stage: 10\ncanaryReplica: 2\n")); err == nil || !strings.Contains(err.Error(), "canaryReplica") {
		t.Errorf("misspelt key: err = %v, want it named", err)
	}
	c, _ = ParseConfig([]byte("stage: 150\n"))
	if err := c.Apply(&o); err == nil {
		t.Error("stage 150 accepted")
	}
}

func TestScanKindAndName(t *testing.T) {
	tests := []struct{ in, kind, name string }{
		{"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n", "ConfigMap", "a"},
		{"kind: \"Service\" # c\nmetadata:\n  labels:\n    name: x\n  name: 'b'\n", "Service", "b"},
		{"metadata:\n    name: c\nkind: Deployment\n", "Deployment", "c"},
		{"{\"kind\": \"Service\"}\n", "", ""},
		{"kind: A\nkind: B\n", "", ""},
		{"kind: Deployment\nmetadata:\n  name: {{ bad }}\n", "Deployment", ""},
		{"kind: Secret\ndata:\n  x: |\n    kind: Deployment\n", "Secret", ""},
		// A double-quoted scalar over several lines: its continuation lines may
		// sit at any indent and look like keys (or a kind). Parsed, the name is
		// "real".
		{"kind: Deployment\nmetadata:\n  annotations:\n    note: \"first\n  name: fake\n    end\"\n  name: real\n", "", ""},
		{"kind: Deployment\nmetadata:\n  annotations:\n    note: 'it''s\n  name: fake'\n  name: real\n", "", ""},
		{"kind: Deployment\nmetadata:\n  annotations:\n    note: \"a \\\" quote\n  name: fake\"\n  name: real\n", "", ""},
		// Closed on their line, quotes (escaped ones too) leave the scan certain.
		{"kind: Deployment\nmetadata:\n  annotations:\n    note: \"a \\\" b\" # it's\n    other: 'it''s'\n    plain: don't\n  name: real\n", "Deployment", "real"},
		// Two names at the metadata level (a duplicate key): not certain.
		{"kind: Deployment\nmetadata:\n  name: a\n  name: b\n", "Deployment", ""},
		{"kind: Deployment\nmetadata:\n  name: real\n  annotations:\n    note: \"first\n  name: fake\"\n", "", ""},
		// A block scalar's lines are always deeper than its key.
		{"kind: Deployment\nmetadata:\n  annotations:\n    note: |\n      name: fake\n  name: real\n", "Deployment", "real"},
	}
	for _, tt := range tests {
		kind, name := scanKindAndName([]byte(tt.in))
		if kind != tt.kind || name != tt.name {
			t.Errorf("scan(%q) = %q, %q; want %q, %q", tt.in, kind, name, tt.kind, tt.name)
		}
		// The contract: a name only when the parser would read the same one.
		if n, err := yaml.Parse(tt.in); err == nil && name != "" && n.GetName() != name {
			t.Errorf("scan(%q) = name %q, the parser reads %q", tt.in, name, n.GetName())
		}
	}
}

// A Deployment whose annotation spans lines that look like a name: --workload still
// finds it, and the production manifest's copy of it pins production.
func TestMultiLineAnnotationLooksLikeName(t *testing.T) {
	annotate := func(manifest, fake string) string {
		t.Helper()
		out := strings.Replace(manifest, "kind: Deployment\nmetadata:\n  name: cart\n",
			"kind: Deployment\nmetadata:\n  name: cart\n  annotations:\n    note: \"rolled by\n  name: "+fake+"\n    on Mondays\"\n", 1)
		if out == manifest {
			t.Fatal("fixture: no Deployment cart to annotate")
		}
		return out
	}
	out := render(t, annotate(appAt("2.0"), "web"), Options{Stage: mustStage(t, "10"), Workloads: []string{"cart"},
		ProductionManifest: []byte(annotate(productionManifest(t), "other"))})
	wantField(t, find(t, out, "Deployment", "cart"), "spec.template.spec.containers.[name=cart].image", "repo/cart:1.0")
	wantField(t, find(t, out, "Deployment", "cart-canary"), "spec.template.spec.containers.[name=cart].image", "repo/cart:2.0")
}

func TestHostMatches(t *testing.T) {
	for _, tt := range []struct {
		host, name, ns, domain string
		want                   bool
	}{
		{"cart", "cart", "shop", "", true},
		{"cart.shop", "cart", "shop", "", true},
		{"cart.shop.svc", "cart", "shop", "", true},
		{"cart.shop.svc.cluster.local", "cart", "shop", "", true},
		{"cart.shop.svc.cluster.local", "cart", "shop", "cluster.local", true},
		{"cart.other.svc.cluster.local", "cart", "shop", "", false},
		{"cart.shopping.svc.cluster.local", "cart", "shop", "", false},
		{"cart.shop.svc.corp.example", "cart", "shop", "", false},
		{"cart.shop.svc.corp.example", "cart", "shop", "corp.example", true},
		{"cart.shop.svc.cluster.local", "cart", "shop", "corp.example", false},
		{"cart.shop.svc.cluster", "cart", "shop", "", false},
		// The namespace unknown: only the short name is certain.
		{"cart", "cart", "", "", true},
		{"cart.any.svc.cluster.local", "cart", "", "", false},
		{"cart.any", "cart", "", "", false},
		{"cart-api", "cart", "", "", false},
		{"cart.example.com", "cart", "", "", false},
		{"*", "cart", "", "", false},
		{"", "", "", "", false},
	} {
		if got := HostMatches(tt.host, tt.name, tt.ns, tt.domain); got != tt.want {
			t.Errorf("HostMatches(%q, %q, %q, %q) = %v", tt.host, tt.name, tt.ns, tt.domain, got)
		}
	}
}

// Hazard 3: final's first step moves traffic while the canary pods still run.
func TestFinalDraining(t *testing.T) {
	pinned := render(t, appAt("2.0"), Options{Stage: mustStage(t, "swap"), ProductionManifest: []byte(productionManifest(t))})
	out := render(t, appAt("2.0"), Options{Stage: mustStage(t, "final"), Draining: true, ProductionManifest: []byte(pinned)})
	wantField(t, find(t, out, "Deployment", "cart-canary"), "spec.replicas", "3")
	if w := weights(t, find(t, out, "VirtualService", "cart-api"), 0); w["production"] != "100" || w["canary"] != "0" {
		t.Errorf("draining weights = %v, want 100/0", w)
	}
	if err := renderErr(t, appAt("2.0"), Options{Stage: mustStage(t, "10"), Draining: true}); !strings.Contains(err.Error(), "final") {
		t.Errorf("draining at 10: %v", err)
	}
}

// Workloads of one release at different stages (seed 002: teams release
// independently).
func TestIndependentStages(t *testing.T) {
	web := strings.NewReplacer("cart-api", "web-api", "cart", "web").Replace(appAt("2.0"))
	in := appAt("2.0") + web
	cfg, err := ParseConfig([]byte("stage: stable\nworkloads:\n  cart: {stage: \"10\"}\n  web: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var o Options
	if err := cfg.Apply(&o); err != nil {
		t.Fatal(err)
	}
	out := render(t, in, o)
	if w := weights(t, find(t, out, "VirtualService", "cart-api"), 0); w["production"] != "90" || w["canary"] != "10" {
		t.Errorf("cart at 10 routes %v", w)
	}
	wantField(t, find(t, out, "Deployment", "cart-canary"), "spec.replicas", "3")
	wantField(t, find(t, out, "Deployment", "web-canary"), "spec.replicas", "0")
	if w := weights(t, find(t, out, "VirtualService", "web-api"), 0); len(w) != 1 {
		t.Errorf("web at stable routes %v, want the bare host", w)
	}
	bad, _ := ParseConfig([]byte("workloads:\n  cart: {stage: sideways}\n"))
	if err := bad.Apply(&o); err == nil || !strings.Contains(err.Error(), "workloads.cart.stage") {
		t.Errorf("bad workload stage: %v", err)
	}
}

// A live stage must not route traffic to a canary with no pods: Istio would answer
// 503 for the canary's share (the library chart refuses it too).
func TestCanaryWithoutPodsIsRefused(t *testing.T) {
	zero := int32(0)
	scaledToZero := strings.Replace(appAt("2.0"), "replicas: 3", "replicas: 0", 1)
	for _, tt := range []struct {
		name  string
		in    string
		opts  Options
		wants []string
	}{
		{"--canary-replicas 0 at 10", appAt("2.0"), Options{Stage: mustStage(t, "10"), CanaryReplicas: &zero},
			[]string{"Deployment cart", "stage 10 routes 10% of traffic to the canary", "--canary-replicas", "at least 1 replica"}},
		{"per-workload canaryReplicas 0 at swap", appAt("2.0"), Options{Stage: mustStage(t, "swap"), Workloads: []string{"cart"},
			PerWorkload: map[string]WorkloadOptions{"cart": {CanaryReplicas: &zero}}},
			[]string{"Deployment cart", "stage swap routes 100%"}},
		{"production scaled to 0 by values at 90", scaledToZero, Options{Stage: mustStage(t, "90")},
			[]string{"Deployment cart", "production's spec.replicas is 0"}},
		{"match rules at preview", appAt("2.0"), Options{Stage: mustStage(t, "preview"), CanaryReplicas: &zero,
			PerWorkload: map[string]WorkloadOptions{"cart": {Match: []*networking.HTTPMatchRequest{{Name: "qa"}}}}},
			[]string{"stage preview routes the requests its match"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := renderErr(t, tt.in, tt.opts)
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
	// Nothing routes to the canary: 0 pods are fine.
	for _, stage := range []string{"0", "preview", "stable", "final"} {
		render(t, appAt("2.0"), Options{Stage: mustStage(t, stage), CanaryReplicas: &zero})
	}
	render(t, scaledToZero, Options{Stage: mustStage(t, "0")})
}
