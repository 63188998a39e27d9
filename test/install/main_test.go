package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/helm-canary/helm-canary/internal/localcluster"
	"github.com/helm-canary/helm-canary/internal/testhelm"
)

var cluster *localcluster.Cluster

// server serves www/ (see prepareReleases) on a loopback port.
var server *httptest.Server

// releases is prepared once per run, while localcluster starts the cluster.
var releases struct {
	done    chan struct{}
	err     error
	www     string // served by server
	version string // plugin.yaml's
	noGo    string // a directory with everything on PATH but go and gofmt
}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse() // for testing.Short; RunTests parses again, which is harmless
	if !testing.Short() {
		tmp, err := os.MkdirTemp("", "helm-canary-install-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "install:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		releases.www = filepath.Join(tmp, "www")
		server = httptest.NewServer(http.FileServer(http.Dir(releases.www)))
		defer server.Close()
		releases.done = make(chan struct{})
		go func() {
			defer close(releases.done)
			releases.err = prepareReleases(tmp)
		}()
		// A test binary that stops early must not leave the build writing into a
		// removed directory.
		defer func() { <-releases.done }()
	}
	return localcluster.RunTests(m, localcluster.Options{Build: "all"}, &cluster)
}

// prepareReleases fills www/ with what the tests download:
//
//	good/vVERSION/       `make dist` for this platform, signed with a throwaway key
//	tampered/vVERSION/   the Helm 4 tarballs with a file added, their .prov unchanged
//	badsums/vVERSION/    the Helm 3 archive with a file added, SHA256SUMS unchanged
//	other-key.asc        the public key of another throwaway key
func prepareReleases(tmp string) error {
	start := time.Now()
	root, err := testhelm.RepoRoot()
	if err != nil {
		return err
	}
	meta, err := os.ReadFile(filepath.Join(root, "plugin.yaml"))
	if err != nil {
		return err
	}
	var p struct {
		Version string `json:"version"`
	}
	if err := yaml.Unmarshal(meta, &p); err != nil {
		return err
	}
	releases.version = p.Version
	if releases.noGo, err = pathWithoutGo(filepath.Join(tmp, "nogo-bin")); err != nil {
		return err
	}

	key := filepath.Join(tmp, "signing-key.asc")
	if err := writeKey(key, true); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(releases.www, "other-key.asc"), false); err != nil {
		return err
	}
	// The same command as `make dist`, for this platform only: cross-compiling all
	// six costs minutes that the tests do not need.
	fmt.Fprintln(os.Stderr, "install: building the release for this platform with hack/dist")
	dist := exec.Command("go", "run", "./hack/dist", "-out", filepath.Join(releases.www, "good"), "-platforms", "host", "-key", key)
	dist.Dir = root
	dist.Stdout, dist.Stderr = os.Stderr, os.Stderr
	if err := dist.Run(); err != nil {
		return fmt.Errorf("go run ./hack/dist: %w", err)
	}

	good := filepath.Join(releases.www, "good", "v"+p.Version)
	for dir, files := range map[string][]string{
		"tampered": {archive("canary"), archive("canary") + ".prov", archive("canary-postrenderer"), archive("canary-postrenderer") + ".prov"},
		"badsums":  {archive("helm-canary"), "SHA256SUMS"},
	} {
		to := filepath.Join(releases.www, dir, "v"+p.Version)
		if err := os.MkdirAll(to, 0o755); err != nil {
			return err
		}
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(good, f))
			if err != nil {
				return err
			}
			if strings.HasSuffix(f, ".tgz") {
				if data, err = addFile(data, "bin/extra", []byte("#!/bin/sh\necho tampered\n")); err != nil {
					return err
				}
			}
			if err := os.WriteFile(filepath.Join(to, f), data, 0o644); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(os.Stderr, "install: releases ready in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// archive is the name of a tarball of this platform: helm-canary (Helm 3), canary
// or canary-postrenderer (Helm 4).
func archive(plugin string) string {
	return fmt.Sprintf("%s-%s-%s-%s.tgz", plugin, releases.version, runtime.GOOS, runtime.GOARCH)
}

// writeKey writes a new throwaway OpenPGP key, the secret key when secret is set,
// else only its public key.
func writeKey(path string, secret bool) error {
	e, err := openpgp.NewEntity("helm-canary test", "throwaway", "test@helm-canary.invalid",
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		return err
	}
	var b bytes.Buffer
	blockType := openpgp.PublicKeyType
	if secret {
		blockType = openpgp.PrivateKeyType
	}
	w, err := armor.Encode(&b, blockType, nil)
	if err != nil {
		return err
	}
	if secret {
		err = e.SerializePrivate(w, nil)
	} else {
		err = e.Serialize(w)
	}
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// addFile returns the gzipped tarball tgz with one more file: a valid archive whose
// bytes differ, what a tampering mirror would serve.
func addFile(tgz []byte, name string, data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// untar unpacks a gzipped tarball of regular files and directories into dir.
func untar(tgz []byte, dir string) error {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if hdr.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, hdr.FileInfo().Mode().Perm()); err != nil {
			return err
		}
	}
}

// pathWithoutGo makes dir a directory of links to every command on PATH except go and
// gofmt: a machine without a Go toolchain, for the PATH of helm and its hooks.
func pathWithoutGo(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, p := range filepath.SplitList(os.Getenv("PATH")) {
		entries, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if name == "go" || name == "gofmt" {
				continue
			}
			link := filepath.Join(dir, name)
			if _, err := os.Lstat(link); err == nil {
				continue // the first on PATH wins, as for the shell
			}
			if err := os.Symlink(filepath.Join(p, name), link); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
}

// ready waits for the releases and the cluster, or skips in -short mode.
func ready(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("install: needs a real kube-apiserver, helm binaries and a release build; not in -short mode")
	}
	if cluster == nil {
		t.Fatal("install: no cluster (TestMain did not start one)")
	}
	<-releases.done
	if releases.err != nil {
		t.Fatalf("preparing the releases: %v", releases.err)
	}
}

// url is the server's address of a path under www/.
func url(path string) string { return server.URL + "/" + path }

// unreachableURL is a loopback address nothing listens on.
func unreachableURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/releases"
}

// helmTimeout bounds one helm command; the Go fallback builds helm-canary (a minute
// on a warm build cache, several on a cold one).
const helmTimeout = 10 * time.Minute

// helmEnv is one Helm major version with a Helm home of its own, the test cluster,
// and a PATH with or without Go.
type helmEnv struct {
	major int
	bin   string
	home  string
	env   []string
}

func newHelmEnv(t *testing.T, major int, withGo bool, vars ...string) *helmEnv {
	t.Helper()
	ready(t)
	home := t.TempDir()
	h := &helmEnv{major: major, bin: filepath.Join(cluster.BinDir(), fmt.Sprintf("helm%d", major)), home: home}
	h.env = append(localcluster.ToolEnv(), testhelm.HomeEnv(home, cluster.Kubeconfig())...)
	if !withGo {
		h.env = append(h.env, "PATH="+releases.noGo)
	}
	h.env = append(h.env, vars...)
	return h
}

func (h *helmEnv) run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := testhelm.Cmd{Name: fmt.Sprintf("helm%d", h.major), Bin: h.bin, Dir: h.home, Env: h.env, Timeout: helmTimeout}
	return cmd.Run(t, nil, args...)
}

func (h *helmEnv) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	stdout, _, err := h.run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout
}

// checkVersion runs `helm canary version`: plugin.yaml's version and a commit.
func (h *helmEnv) checkVersion(t *testing.T) {
	t.Helper()
	out := h.mustRun(t, "canary", "version")
	want := fmt.Sprintf("helm-canary %s (commit ", releases.version)
	if !strings.HasPrefix(out, want) || strings.Contains(out, "commit unknown") {
		t.Errorf("helm%d canary version: %q, want %q followed by a commit", h.major, out, want)
	}
}

// checkStage walks examples/productpage to stage 10 with `helm canary stage` and
// reads the canary Deployment back from the cluster.
func (h *helmEnv) checkStage(t *testing.T, chart string) {
	t.Helper()
	ns := newNamespace(t)
	h.mustRun(t, "canary", "stage", "stable", "pp", chart, "--install", "--set", "image.tag=83", "-n", ns)
	h.mustRun(t, "canary", "stage", "10", "pp", "--set", "image.tag=84", "-n", ns)
	client, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	d, err := client.AppsV1().Deployments(ns).Get(t.Context(), "productpage-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("after helm%d canary stage 10: %v", h.major, err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, ":84") {
		t.Errorf("after helm%d canary stage 10: productpage-canary runs %s, want tag 84", h.major, img)
	}
}

var namespaces atomic.Int32

func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("install-%d", namespaces.Add(1))
	if err := cluster.CreateNamespace(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

// checkout is a copy of the repository without bin/: the directory a user clones and
// `helm plugin install`s. Untracked files are copied too: the tests run what is in
// the working tree.
func checkout(t *testing.T) string {
	t.Helper()
	root, err := testhelm.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "helm-canary")
	err = testhelm.CopyCheckout(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
