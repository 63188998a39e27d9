// Package release drives a Helm release through canary stages with the Helm SDK and
// reads what is live in the cluster: all of helm-canary's Helm and Kubernetes access
// is here.
//
// A stage is applied as a Helm upgrade whose values carry the canary: block (so that
// `helm get values` shows the state) and whose post-renderer is the renderer package,
// in process, pinned to the release's deployed manifest. Helm's own release storage
// is the lock: concurrent upgrades of one release fail in Helm before anything is
// applied, and a render that fails never creates a revision.
package release
