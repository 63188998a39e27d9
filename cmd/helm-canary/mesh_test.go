package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestMeshFlags: every command that reaches a release's routing objects takes the
// mesh cluster's flags, defaulting to the environment variables.
func TestMeshFlags(t *testing.T) {
	t.Setenv(envMeshKubeconfig, "/tmp/asm.yaml")
	t.Setenv(envMeshContext, "asm")
	t.Setenv(envMeshRelease, "")
	root := newRootCmd(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	for _, name := range []string{"stage", "rollback", "status", "route", "rollout"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd.Name() != name {
			t.Fatalf("no %s command: %v", name, err)
		}
		for flag, want := range map[string]string{"mesh-kubeconfig": "/tmp/asm.yaml", "mesh-context": "asm", "mesh-release": ""} {
			f := cmd.Flags().Lookup(flag)
			if f == nil {
				t.Errorf("%s has no --%s", name, flag)
				continue
			}
			if f.DefValue != want {
				t.Errorf("%s --%s defaults to %q, want %q (from the environment)", name, flag, f.DefValue, want)
			}
		}
	}
}
