// Package canaried reads back the manifests the renderer writes: which Deployments
// are a workload's production and canary, the Service they serve, the traffic split
// of the routes that reach it, the stage a manifest is at, and the gateway's user
// tagging. The renderer is the one writer; status, stage inference, --wait, workload
// targets and the route simulator read through this package, from a release's stored
// manifest or from live objects of the same shape. It is pure: bytes or decoded
// objects in, facts out.
package canaried
