// Package release drives a Helm release through canary stages with the Helm SDK and
// reads what is live in the cluster: all of helm-canary's Helm and Kubernetes access
// is here.
//
// A stage command is built the way Helm's pkg/action is: planStage works out, from
// Helm's release storage alone (unit-tested on storage/driver.NewMemory), the
// upgrades to run, each with its values and stage state (canaryState, the values'
// canary: block, so that `helm get values` shows the state); Client.apply runs
// them. How the canary objects are rendered is a mode: helm-canary's post-renderer
// in process, pinned to the release's deployed manifest, or a chart's own canary-lib
// templates driven by values (library mode).
//
// Helm's own release storage is the lock: concurrent upgrades of one release fail
// in Helm before anything is applied, a render that fails never creates a revision,
// and before each step of a multi-step transition apply checks that the newest
// revision is still the one it expects, so a command that ran in between is never
// overwritten.
package release
