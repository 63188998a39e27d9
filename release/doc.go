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
//
// Helm stores no subcharts with a release. A rollback (stage stable) without a
// chart re-applies the last stable revision's stored manifest through Helm's own
// Rollback action when the stored chart cannot be rendered again (restore.go);
// canary-lib, which ships with the plugin, is given back to library-mode charts
// (rehydrate.go). Values are checked against the chart's schema without the
// canary: block, so that schemas forbidding unknown keys accept the state.
//
// Interruptions: the command's context (cancelled by SIGINT/SIGTERM) reaches Helm's
// upgrade, which then marks the revision failed; every API request is bounded by
// --timeout (WithTimeout); a revision left pending by a killed command is named
// with its recovery, and stage stable (rollback) marks it failed and rolls back.
package release
