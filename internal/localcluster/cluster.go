package localcluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// startTimeout bounds waiting for the servers and the CRDs once the binaries exist
// (building them is bounded by the caller's context only: it can take 15 minutes).
// A healthy start takes 10-20 s on 2 cores; with the test packages starting their
// clusters while others build (go test ./... runs packages in parallel) at a load
// average of 16, installing the CRDs alone outlived 2 minutes. A process that dies
// is reported at once, so the bound only matters for a server that hangs.
const startTimeout = 5 * time.Minute

// Options configures Start.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
	// kwok, kwok-stages.yaml and istio-crds.yaml. Empty means: build or reuse them
	// with Binaries(ctx, Build).
	BinDir string
	// Build is the hack/testbin.sh target used when BinDir is empty: "cluster"
	// (the default) or "all", which also provides helm3 and helm4 in BinDir().
	Build string
	// APIOnly starts etcd and kube-apiserver alone: objects are validated and
	// stored, but no controller, scheduler or node acts on them (no pods). For
	// callers that only ask the API server's opinion of manifests.
	APIOnly bool
	// NoIstioCRDs leaves Istio's CRDs out: a cluster that runs pods while the
	// mesh's configuration lives in another one (ASM's data plane, an Istio
	// remote cluster), where any routing object applied is refused.
	NoIstioCRDs bool
}

func (o Options) binDir(ctx context.Context) (string, error) {
	if o.BinDir != "" {
		return o.BinDir, nil
	}
	if o.Build == "" {
		return Binaries(ctx, "cluster")
	}
	return Binaries(ctx, o.Build)
}

// Cluster is a running etcd + kube-apiserver with Istio's CRDs installed and, unless
// Options.APIOnly, kube-controller-manager, kube-scheduler and kwok with simulated
// Nodes, so that workloads get pods that become Ready.
type Cluster struct {
	binDir     string
	dir        string // temporary; holds data, keys, logs and the kubeconfig
	kubeconfig string
	config     *rest.Config

	etcd, apiserver                    *process
	controllerManager, scheduler, kwok *process   // nil with Options.APIOnly
	processes                          []*process // in the order started

	client  kubernetes.Interface
	dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper

	stopOnce sync.Once
}

// Start starts etcd and kube-apiserver on free loopback ports, waits until the API
// server is ready and installs Istio's CRDs; then (unless opts.APIOnly) starts the
// controller-manager, the scheduler and kwok and waits until the simulated nodes are
// Ready. The caller must call Stop. On error everything started so far is stopped
// again.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	binDir, err := opts.binDir(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "helm-canary-cluster-")
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	c := &Cluster{binDir: binDir, dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()

	ports, err := freePorts(4)
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	host := "https://127.0.0.1:" + strconv.Itoa(ports[2])

	token, err := writeCredentials(dir)
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}

	c.etcd, err = c.startProcess("etcd",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL,
		// The data is thrown away after the test: durability only costs time.
		"--unsafe-no-fsync",
	)
	if err != nil {
		return nil, err
	}
	c.apiserver, err = c.startProcess("kube-apiserver",
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[2]),
		"--cert-dir", filepath.Join(dir, "certs"), // self-signed serving certificate
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		"--token-auth-file", filepath.Join(dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.0.0.0/24",
		// Pods would wait for their namespace's default service account, which the
		// controller-manager creates a moment after the namespace: tests create
		// namespaces and install at once. (kwok's pods need no token anyway.)
		"--disable-admission-plugins", "ServiceAccount",
	)
	if err != nil {
		return nil, err
	}

	c.config = &rest.Config{
		Host:            host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		// The defaults (5 QPS) would throttle installing the CRDs and big manifests.
		QPS:   100,
		Burst: 200,
	}
	if c.client, err = kubernetes.NewForConfig(c.config); err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	if c.dynamic, err = dynamic.NewForConfig(c.config); err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.client.Discovery()))

	err = c.waitFor(ctx, "kube-apiserver /readyz", func() error {
		_, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if c.kubeconfig, err = writeKubeconfig(dir, host, token); err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	if !opts.NoIstioCRDs {
		if err := c.installCRDs(ctx, filepath.Join(binDir, "istio-crds.yaml")); err != nil {
			return nil, err
		}
	}
	if !opts.APIOnly {
		if err := c.startWorkloads(ctx, ports[3]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// startProcess starts the binary name from the cluster's BinDir, logging to
// name.log in its directory, and keeps it for waitFor and Stop.
func (c *Cluster) startProcess(name string, args ...string) (*process, error) {
	p, err := startProcess(c.dir, name, filepath.Join(c.binDir, name), args...)
	if err != nil {
		return nil, err
	}
	c.processes = append(c.processes, p)
	return p, nil
}

// Stop kills every process and removes the temporary directory. It is safe to call
// more than once and on a partly started Cluster.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		// In the reverse order of start: clients before the API server, the API
		// server before etcd, so none logs a burst of errors about the others.
		for i := len(c.processes) - 1; i >= 0; i-- {
			c.processes[i].stop()
		}
		_ = os.RemoveAll(c.dir)
	})
}

// Kubeconfig is the path of a kubeconfig file for the cluster (admin token,
// insecure-skip-tls-verify), for helm and other command-line tools.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// RESTConfig returns a copy of the admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.config) }

// BinDir is the directory of the test binaries, where callers find helm3 and helm4
// (when started with Build "all").
func (c *Cluster) BinDir() string { return c.binDir }

// CreateNamespace creates a namespace; one that already exists is not an error, so
// tests can call it unconditionally.
func (c *Cluster) CreateNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err := c.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("Namespace %s create: %w", name, err)
	}
	return nil
}

// waitFor polls check until it succeeds, failing early with the log of any of
// the cluster's processes that exits.
func (c *Cluster) waitFor(ctx context.Context, what string, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		for _, p := range c.processes {
			select {
			case <-p.done:
				return p.exited()
			default:
			}
		}
		select {
		case <-ctx.Done():
			last := c.processes[len(c.processes)-1]
			return fmt.Errorf("waiting for %s: %w (last error: %v); end of %s:\n%s",
				what, ctx.Err(), err, last.logPath, last.logTail())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct free loopback ports. They are held open together so
// they differ; another process may still take one before our servers bind it, which
// is rare enough on a test machine to accept.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeCredentials writes the service-account signing key pair and a tokens.csv
// with one random admin token (in system:masters, so RBAC allows everything), and
// returns that token.
func writeCredentials(dir string) (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("generate service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", fmt.Errorf("marshal service-account public key: %w", err)
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	token := hex.EncodeToString(secret)
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": []byte(token + ",admin,admin,system:masters\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return "", err
		}
	}
	return token, nil
}

func writeKubeconfig(dir, host, token string) (string, error) {
	config := clientcmdapi.NewConfig()
	config.Clusters["local"] = &clientcmdapi.Cluster{Server: host, InsecureSkipTLSVerify: true}
	config.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	config.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin", Namespace: "default"}
	config.CurrentContext = "local"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	return path, nil
}

// ToolEnv is the process environment without anything that points Helm, kubectl or
// helm-canary at another cluster or configuration (HELM_*, XDG_*, KUBECONFIG), for
// tools run against this cluster; PATH, HOME and the Go settings stay.
func ToolEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "HELM_") || name == "KUBECONFIG" || strings.HasPrefix(name, "XDG_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
