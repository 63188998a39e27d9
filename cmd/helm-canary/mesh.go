package main

import (
	"os"

	"github.com/spf13/pflag"

	"github.com/helm-canary/helm-canary/release"
)

// Environment variables for the mesh cluster, as Helm's own kube flags have theirs
// (HELM_KUBECONTEXT, KUBECONFIG): a CI job sets them once for every command.
const (
	envMeshKubeconfig = "HELM_CANARY_MESH_KUBECONFIG"
	envMeshContext    = "HELM_CANARY_MESH_CONTEXT"
	envMeshRelease    = "HELM_CANARY_MESH_RELEASE"
)

// addMeshFlags binds the mesh cluster flags of stage, rollback, status and route.
func addMeshFlags(fl *pflag.FlagSet, t *release.MeshTarget) {
	fl.StringVar(&t.Kubeconfig, "mesh-kubeconfig", os.Getenv(envMeshKubeconfig), "kubeconfig of the cluster that holds the mesh's routing objects (ASM's control plane, Istio's config cluster); $"+envMeshKubeconfig)
	fl.StringVar(&t.Context, "mesh-context", os.Getenv(envMeshContext), "kube context of that cluster; $"+envMeshContext)
	fl.StringVar(&t.Release, "mesh-release", os.Getenv(envMeshRelease), "the routing objects' companion release there (default RELEASE-mesh; kept in the release); $"+envMeshRelease)
}
