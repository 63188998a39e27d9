// Package install tests how users install helm-canary without Go: `make dist`'s
// tarballs served from a loopback HTTP server, the install hook's verified download
// with the real Helm 3 and Helm 4 CLIs, Helm 4's signature check, and the Go
// fallback, ending with `helm canary stage` on a local API server.
//
//	go test ./test/install/ -v -count=1   # builds the host platform's release (a minute)
//	go test ./test/install/ -short        # skips everything
package install
