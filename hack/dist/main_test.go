package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"sigs.k8s.io/yaml"
)

var testPlugin = plugin{Name: "canary", Version: "1.2.3", Usage: "u", Description: "d"}

// The archives are reproducible, list plugin.yaml at the root (where Helm 3 looks)
// and keep the binary executable.
func TestTgz(t *testing.T) {
	files := func() []file {
		return []file{
			{name: "plugin.yaml", mode: 0o644, data: []byte("name: canary\n")},
			{name: "bin/helm-canary", mode: 0o755, data: []byte("\x7fELF")},
			{name: "README.md", mode: 0o644, data: []byte("# x\n")},
		}
	}
	mtime := time.Unix(1700000000, 0)
	a, err := tgz(files(), mtime)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tgz(files(), mtime)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two archives of the same files differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var got []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, hdr.Name+" "+hdr.FileInfo().Mode().String())
		if !hdr.ModTime.Equal(mtime) || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s: mtime %s uid %d gid %d, want %s and root", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, mtime)
		}
	}
	want := []string{"README.md -rw-r--r--", "bin/ drwxr-xr-x", "bin/helm-canary -rwxr-xr-x", "plugin.yaml -rw-r--r--"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The Helm 3 tarball must never carry a v1 plugin.yaml (Helm 3 would then load no
// plugin at all); the Helm 4 ones are v1 of their type; all run the platform's binary.
func TestPluginYAMLs(t *testing.T) {
	type meta struct {
		APIVersion      string `json:"apiVersion"`
		Type            string `json:"type"`
		Name            string `json:"name"`
		Version         string `json:"version"`
		PlatformCommand []struct {
			Command string   `json:"command"`
			Args    []string `json:"args"`
		} `json:"platformCommand"`
		RuntimeConfig struct {
			PlatformCommand []struct {
				Command string   `json:"command"`
				Args    []string `json:"args"`
			} `json:"platformCommand"`
		} `json:"runtimeConfig"`
	}
	parse := func(data []byte) meta {
		var m meta
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, p := range []platform{{"linux", "arm64"}, {"windows", "amd64"}} {
		legacy := parse(legacyPluginYAML(testPlugin, p))
		if legacy.APIVersion != "" || legacy.Name != "canary" || legacy.Version != "1.2.3" ||
			len(legacy.PlatformCommand) != 1 || legacy.PlatformCommand[0].Command != "$HELM_PLUGIN_DIR/"+p.exe() {
			t.Errorf("%s: legacy plugin.yaml %+v", p, legacy)
		}
		cli := parse(cliV1PluginYAML(testPlugin, p))
		if cli.APIVersion != "v1" || cli.Type != "cli/v1" || cli.Name != "canary" ||
			len(cli.RuntimeConfig.PlatformCommand) != 1 || cli.RuntimeConfig.PlatformCommand[0].Command != "$HELM_PLUGIN_DIR/"+p.exe() {
			t.Errorf("%s: cli/v1 plugin.yaml %+v", p, cli)
		}
		pr := parse(postRendererV1PluginYAML(plugin{Name: postRendererName, Version: "1.2.3"}, p))
		if pr.APIVersion != "v1" || pr.Type != "postrenderer/v1" || pr.Name != postRendererName || len(pr.RuntimeConfig.PlatformCommand) != 1 {
			t.Errorf("%s: postrenderer/v1 plugin.yaml %+v", p, pr)
		}
	}
}

// A .prov verifies with the signer's public key and carries the tarball's SHA-256
// under its file name, the two things Helm 4 checks.
func TestProvenance(t *testing.T) {
	signer, err := openpgp.NewEntity("t", "", "t@example.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("tarball bytes")
	prov, err := provenance(signer, data, "canary-1.2.3-linux-amd64.tgz", cliV1PluginYAML(testPlugin, platform{"linux", "amd64"}))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := clearsign.Decode(prov)
	if block == nil {
		t.Fatalf("no clear-signed block:\n%s", prov)
	}
	if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{signer}, bytes.NewReader(block.Bytes), block.ArmoredSignature.Body, signConfig); err != nil {
		t.Fatal(err)
	}
	parts := bytes.Split(block.Plaintext, []byte("\n...\n"))
	if len(parts) != 2 {
		t.Fatalf("want metadata and sums separated by ..., got %d parts:\n%s", len(parts), block.Plaintext)
	}
	var sums struct {
		Files map[string]string `json:"files"`
	}
	if err := yaml.Unmarshal(parts[1], &sums); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := "sha256:" + hex.EncodeToString(sum[:])
	if got := sums.Files["canary-1.2.3-linux-amd64.tgz"]; got != want || len(sums.Files) != 1 {
		t.Errorf("sums %v: want only canary-1.2.3-linux-amd64.tgz: %s", sums.Files, want)
	}
}
