// Command dist builds helm-canary's release artifacts (`make dist`): static binaries
// per platform, packaged as Helm plugin tarballs, a SHA256SUMS file and, given a key,
// Helm 4 provenance files (.prov).
//
// For each platform OS/ARCH, into OUT/vVERSION/ (the layout of the release downloads,
// https://github.com/helm-canary/helm-canary/releases/download/vVERSION/):
//
//	helm-canary-VERSION-OS-ARCH.tgz           Helm 3 (legacy plugin.yaml), also what
//	                                          scripts/install-hook.sh downloads
//	canary-VERSION-OS-ARCH.tgz (+ .prov)      Helm 4 cli/v1 plugin `canary`
//	canary-postrenderer-VERSION-OS-ARCH.tgz   Helm 4 postrenderer/v1 plugin
//	  (+ .prov)
//	SHA256SUMS                                one `sha256sum` line per tarball
//	helm-canary-signing-key.asc               the public key, when signing
//
// The Helm 3 tarball has plugin.yaml at its root, where Helm 3's HTTP installer looks;
// the Helm 4 ones hold a directory named after the plugin, which Helm 4 needs for a
// local tarball (and accepts from a URL). The archives are reproducible: same
// sources and commit, same bytes (sorted entries, owner root, mtime of the commit).
//
// A .prov is what `helm plugin package --sign` writes (Helm 4's pkg/provenance): an
// OpenPGP clear-signed message of the plugin's metadata, "...", and the SHA-256 of the
// tarball under its file name. Helm checks it against the downloaded file's base
// name, so each platform's tarball is signed under its final name.
//
//	go run ./hack/dist [-out dist] [-platforms linux/amd64,...] [-key secret-key.asc]
//
// The key is an OpenPGP secret key (armored or binary, e.g. `gpg --export-secret-keys
// --armor ID`); a passphrase comes from HELM_CANARY_SIGN_PASSPHRASE.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

// allPlatforms are the release platforms (`make dist`).
const allPlatforms = "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64,windows/arm64"

const postRendererName = "canary-postrenderer"

func main() {
	out := flag.String("out", "dist", "output directory; the files go to OUT/vVERSION/")
	platforms := flag.String("platforms", allPlatforms, `comma-separated OS/ARCH list; "host" is this machine's`)
	keyFile := flag.String("key", "", "OpenPGP secret key to sign the Helm 4 tarballs with (none: unsigned)")
	commitFlag := flag.String("commit", "", "commit to stamp into the binaries (default: git rev-parse HEAD, -dirty if the tree is)")
	flag.Parse()
	if flag.NArg() != 0 {
		fail(fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	if err := run(*out, *platforms, *keyFile, *commitFlag); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dist:", err)
	os.Exit(1)
}

// plugin is what dist reads from the repository's plugin.yaml files.
type plugin struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Usage       string `json:"usage"`
	Description string `json:"description"`
}

type platform struct{ os, arch string }

func (p platform) String() string { return p.os + "-" + p.arch }

// exe is the binary's name inside the tarballs.
func (p platform) exe() string {
	if p.os == "windows" {
		return "bin/helm-canary.exe"
	}
	return "bin/helm-canary"
}

func run(out, platformList, keyFile, commit string) error {
	start := time.Now()
	cli, err := readPlugin("plugin.yaml")
	if err != nil {
		return fmt.Errorf("%w (run dist from the repository root)", err)
	}
	pr, err := readPlugin(filepath.Join("plugins", postRendererName, "plugin.yaml"))
	if err != nil {
		return err
	}
	if pr.Version != cli.Version {
		return fmt.Errorf("plugins/%s/plugin.yaml has version %q but plugin.yaml %q: both plugins are released together, make them equal", postRendererName, pr.Version, cli.Version)
	}
	platforms, err := parsePlatforms(platformList)
	if err != nil {
		return err
	}
	if commit == "" {
		if commit, err = gitCommit(); err != nil {
			return err
		}
	}
	mtime, err := sourceTime()
	if err != nil {
		return err
	}
	var signer *openpgp.Entity
	if keyFile != "" {
		if signer, err = loadSigner(keyFile); err != nil {
			return err
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		return err
	}
	postrender, err := os.ReadFile(filepath.Join("plugins", postRendererName, "postrender.sh"))
	if err != nil {
		return err
	}

	dir := filepath.Join(out, "v"+cli.Version)
	// Stale files of an earlier run must not be published with this one.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "helm-canary-dist-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	fmt.Fprintf(os.Stderr, "dist: helm-canary %s, commit %s, %d platform(s)\n", cli.Version, commit, len(platforms))
	sums := map[string]string{}
	for _, p := range platforms {
		binPath := filepath.Join(tmp, p.String(), filepath.Base(p.exe()))
		built := time.Now()
		if err := buildBinary(p, cli.Version, commit, binPath); err != nil {
			return err
		}
		bin, err := os.ReadFile(binPath)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "dist: built %s in %s\n", p, time.Since(built).Round(time.Second))

		tarballs := []struct {
			name   string
			files  []file
			meta   []byte // plugin.yaml
			signed bool
		}{
			{name: fmt.Sprintf("helm-canary-%s-%s.tgz", cli.Version, p), meta: legacyPluginYAML(cli, p)},
			{name: fmt.Sprintf("%s-%s-%s.tgz", cli.Name, cli.Version, p), meta: cliV1PluginYAML(cli, p), signed: true},
			{name: fmt.Sprintf("%s-%s-%s.tgz", pr.Name, pr.Version, p), meta: postRendererV1PluginYAML(pr, p), signed: true},
		}
		for _, t := range tarballs {
			files := []file{
				{name: "plugin.yaml", mode: 0o644, data: t.meta},
				{name: "README.md", mode: 0o644, data: readme},
				{name: p.exe(), mode: 0o755, data: bin},
			}
			if strings.HasPrefix(t.name, pr.Name+"-") && p.os != "windows" {
				files = append(files, file{name: "postrender.sh", mode: 0o755, data: postrender})
			}
			if t.signed {
				// Helm 4 installs a local tarball only from a directory named after the
				// plugin (as `helm plugin package` makes it); Helm 3 needs plugin.yaml at
				// the root, so only the Helm 4 tarballs have one.
				name := cli.Name
				if strings.HasPrefix(t.name, pr.Name+"-") {
					name = pr.Name
				}
				for i := range files {
					files[i].name = name + "/" + files[i].name
				}
			}
			data, err := tgz(files, mtime)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, t.name), data, 0o644); err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			sums[t.name] = hex.EncodeToString(sum[:])
			if t.signed && signer != nil {
				prov, err := provenance(signer, data, t.name, t.meta)
				if err != nil {
					return fmt.Errorf("signing %s: %w", t.name, err)
				}
				if err := os.WriteFile(filepath.Join(dir, t.name+".prov"), prov, 0o644); err != nil {
					return err
				}
			}
		}
	}
	if err := writeSums(filepath.Join(dir, "SHA256SUMS"), sums); err != nil {
		return err
	}
	if signer != nil {
		if err := writePublicKey(filepath.Join(dir, "helm-canary-signing-key.asc"), signer); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(os.Stderr, "dist: no -key: the Helm 4 tarballs are NOT signed (Helm 4 installs them only with --verify=false); a release signs them")
	}
	return list(dir, time.Since(start))
}

func readPlugin(path string) (plugin, error) {
	var p plugin
	data, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if err := yaml.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	if p.Name == "" || p.Version == "" {
		return p, fmt.Errorf("%s: name and version are required", path)
	}
	return p, nil
}

func parsePlatforms(list string) ([]platform, error) {
	if list == "host" {
		return []platform{{runtime.GOOS, runtime.GOARCH}}, nil
	}
	var ps []platform
	for _, s := range strings.Split(list, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(s), "/")
		if !ok || goos == "" || goarch == "" {
			return nil, fmt.Errorf("platform %q: want OS/ARCH, e.g. linux/amd64", s)
		}
		ps = append(ps, platform{goos, goarch})
	}
	return ps, nil
}

func gitCommit() (string, error) {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse HEAD: %v (outside a git checkout, pass -commit)", err)
	}
	commit := strings.TrimSpace(string(out))
	status, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil {
		return "", fmt.Errorf("git status: %v", err)
	}
	if len(bytes.TrimSpace(status)) > 0 {
		commit += "-dirty"
	}
	return commit, nil
}

// sourceTime is the archives' file time: SOURCE_DATE_EPOCH if set (the reproducible
// builds convention), else the commit's time, so a rebuild gives the same bytes.
func sourceTime() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		out, err := exec.Command("git", "log", "-1", "--format=%ct").Output()
		if err != nil {
			return time.Unix(0, 0).UTC(), nil
		}
		s = strings.TrimSpace(string(out))
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH / commit time %q: %v", s, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// buildBinary cross-compiles a static binary: no cgo (so no libc to match on the
// user's machine), -trimpath (no build paths inside), stripped (-s -w: the download
// is about a third smaller).
func buildBinary(p platform, version, commit, out string) error {
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s", version, commit)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, "./cmd/helm-canary")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %w", p, err)
	}
	return nil
}

// The plugin.yaml files of the tarballs. Each tarball carries its platform's binary,
// so none has an install hook: there is nothing left to fetch or build.

const generated = "# Generated by hack/dist for one platform; the sources are plugin.yaml and\n# plugins/canary-postrenderer/plugin.yaml of github.com/helm-canary/helm-canary.\n"

type platformCommand struct {
	Command string   `yaml:"command"`
	Args    []string `yaml:"args,omitempty"`
}

func binCommand(p platform) platformCommand {
	return platformCommand{Command: "$HELM_PLUGIN_DIR/" + p.exe()}
}

// legacyPluginYAML is the Helm 3 plugin: the legacy format, which Helm 3 needs.
func legacyPluginYAML(m plugin, p platform) []byte {
	return marshal(struct {
		Name            string            `yaml:"name"`
		Version         string            `yaml:"version"`
		Usage           string            `yaml:"usage"`
		Description     string            `yaml:"description"`
		PlatformCommand []platformCommand `yaml:"platformCommand"`
	}{m.Name, m.Version, m.Usage, m.Description, []platformCommand{binCommand(p)}})
}

type runtimeConfig struct {
	PlatformCommand []platformCommand `yaml:"platformCommand"`
}

// cliV1PluginYAML is the Helm 4 cli/v1 plugin, with the help texts where Helm 4 puts
// a legacy plugin's (usage as shortHelp, description as longHelp).
func cliV1PluginYAML(m plugin, p platform) []byte {
	type config struct {
		ShortHelp string `yaml:"shortHelp"`
		LongHelp  string `yaml:"longHelp"`
	}
	return marshal(struct {
		APIVersion    string        `yaml:"apiVersion"`
		Type          string        `yaml:"type"`
		Name          string        `yaml:"name"`
		Version       string        `yaml:"version"`
		Runtime       string        `yaml:"runtime"`
		Config        config        `yaml:"config"`
		RuntimeConfig runtimeConfig `yaml:"runtimeConfig"`
	}{"v1", "cli/v1", m.Name, m.Version, "subprocess", config{m.Usage, m.Description},
		runtimeConfig{[]platformCommand{binCommand(p)}}})
}

// postRendererV1PluginYAML is the Helm 4 postrenderer/v1 plugin. Where there is a
// shell it runs postrender.sh, which keeps render's stderr in a log (Helm 4 discards
// a post-renderer's stderr); on Windows it runs the binary directly.
func postRendererV1PluginYAML(m plugin, p platform) []byte {
	cmd := platformCommand{Command: "sh", Args: []string{"$HELM_PLUGIN_DIR/postrender.sh"}}
	if p.os == "windows" {
		cmd = binCommand(p)
		cmd.Args = []string{"render"}
	}
	return marshal(struct {
		APIVersion    string        `yaml:"apiVersion"`
		Type          string        `yaml:"type"`
		Name          string        `yaml:"name"`
		Version       string        `yaml:"version"`
		Runtime       string        `yaml:"runtime"`
		RuntimeConfig runtimeConfig `yaml:"runtimeConfig"`
	}{"v1", "postrenderer/v1", m.Name, m.Version, "subprocess", runtimeConfig{[]platformCommand{cmd}}})
}

func marshal(v any) []byte {
	var b bytes.Buffer
	b.WriteString(generated)
	enc := yamlv3.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		panic(err) // only fixed struct types reach here
	}
	return b.Bytes()
}

type file struct {
	name string
	mode int64
	data []byte
}

// tgz writes files (and their directories) into a gzipped tar with sorted entries,
// root ownership and one mtime: the same input gives the same bytes.
func tgz(files []file, mtime time.Time) ([]byte, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	for _, f := range files {
		if d := filepath.ToSlash(filepath.Dir(f.name)); d != "." && !dirs[d] {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
				return nil, err
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// loadSigner reads the first secret key of an armored or binary OpenPGP key file and
// decrypts it with HELM_CANARY_SIGN_PASSPHRASE when it is protected.
func loadSigner(path string) (*openpgp.Entity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil {
		ring, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not an OpenPGP key: %v", path, err)
	}
	for _, e := range ring {
		if e.PrivateKey == nil {
			continue
		}
		if e.PrivateKey.Encrypted {
			pass := os.Getenv("HELM_CANARY_SIGN_PASSPHRASE")
			if pass == "" {
				return nil, fmt.Errorf("%s: the key is passphrase-protected: set HELM_CANARY_SIGN_PASSPHRASE", path)
			}
			if err := e.PrivateKey.Decrypt([]byte(pass)); err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
		}
		return e, nil
	}
	return nil, fmt.Errorf("%s has no secret key (export it with gpg --export-secret-keys --armor ID)", path)
}

// signConfig is Helm's (pkg/provenance): SHA-512 signatures.
var signConfig = &packet.Config{DefaultHash: crypto.SHA512}

// provenance is Helm 4's plugin .prov for the tarball data named name: the clear-
// signed message "<plugin metadata YAML>\n...\nfiles:\n  NAME: sha256:HEX\n" (as
// helm.sh/helm/v4/pkg/provenance's messageBlock builds it). It checks its own
// signature before returning.
func provenance(signer *openpgp.Entity, data []byte, name string, pluginYAML []byte) ([]byte, error) {
	var meta map[string]any
	if err := yaml.Unmarshal(pluginYAML, &meta); err != nil {
		return nil, err
	}
	metaYAML, err := yaml.Marshal(meta)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	sums, err := yaml.Marshal(map[string]any{"files": map[string]string{name: "sha256:" + hex.EncodeToString(sum[:])}})
	if err != nil {
		return nil, err
	}
	message := append(append(metaYAML, "\n...\n"...), sums...)

	var out bytes.Buffer
	w, err := clearsign.Encode(&out, signer.PrivateKey, signConfig)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(message); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}

	block, _ := clearsign.Decode(out.Bytes())
	if block == nil {
		return nil, errors.New("no clear-signed block in the output")
	}
	if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{signer}, bytes.NewReader(block.Bytes), block.ArmoredSignature.Body, signConfig); err != nil {
		return nil, fmt.Errorf("the new signature does not verify: %w", err)
	}
	return out.Bytes(), nil
}

func writeSums(path string, sums map[string]string) error {
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n) // sha256sum's format: `sha256sum -c` reads it
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func writePublicKey(path string, e *openpgp.Entity) error {
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		return err
	}
	if err := e.Serialize(w); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	b.WriteByte('\n')
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// list prints what was made, with sizes, for the release notes and the log.
func list(dir string, took time.Duration) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var total int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		fmt.Printf("%10s  %s\n", size(info.Size()), filepath.Join(dir, e.Name()))
	}
	fmt.Printf("%10s  total, %d files, in %s\n", size(total), len(entries), took.Round(time.Second))
	return nil
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
