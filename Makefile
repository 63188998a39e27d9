# helm-canary. `make help` lists the targets.

GO          ?= go
export GOTOOLCHAIN := local
export GOFLAGS     := -mod=mod
# The plugin version has one source: plugin.yaml.
VERSION     := $(shell sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' plugin.yaml 2>/dev/null | head -n1)
VERSION     := $(if $(VERSION),$(VERSION),dev)
LDFLAGS     := -X main.version=$(VERSION)
FUZZTIME    ?= 30s
BENCH_N     ?= 3000
# e.g. BENCH_FLAGS='-ratio-by cpu' on a shared machine (see hack/bench -help).
BENCH_FLAGS ?=

.PHONY: help build dist test test-unit testbin fuzz bench demo vet fmt clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

build: ## build bin/helm-canary
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/helm-canary ./cmd/helm-canary

# SIGN_KEY: the release's OpenPGP secret key file (gpg --export-secret-keys --armor ID);
# its passphrase in HELM_CANARY_SIGN_PASSPHRASE. Without it the Helm 4 tarballs are
# unsigned. PLATFORMS: e.g. PLATFORMS=host for this machine's only. See RELEASING.md.
SIGN_KEY    ?=
PLATFORMS   ?= linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64,windows/arm64

dist: ## release tarballs for Helm 3 and 4, SHA256SUMS, .prov (SIGN_KEY=file) in dist/vVERSION
	$(GO) run ./hack/dist -out dist -platforms '$(PLATFORMS)' $(if $(SIGN_KEY),-key '$(SIGN_KEY)')

testbin: ## build (once) and cache etcd, Kubernetes, kwok, helm 3, helm 4, istio-check and Istio's CRDs; install luajit and prometheus
	bash hack/testbin.sh all
	@# The gateway filter's Lua is tested with LuaJIT, the Lua Envoy embeds (Debian's package).
	@command -v luajit >/dev/null || { echo "installing luajit (Debian package)"; \
		{ apt-get install -y -qq luajit || { apt-get update -qq && apt-get install -y -qq luajit; }; } >/dev/null \
		|| { echo "could not install luajit: install it (apt-get install luajit) and run make test again"; exit 1; }; }
	@# helm canary rollout's checks are tested against a real Prometheus server (Debian's package).
	@command -v prometheus >/dev/null || { echo "installing prometheus (Debian package)"; \
		{ apt-get install -y -qq prometheus || { apt-get update -qq && apt-get install -y -qq prometheus; }; } >/dev/null \
		|| { echo "could not install prometheus: install it (apt-get install prometheus) or set HELM_CANARY_PROMETHEUS, and run make test again"; exit 1; }; }

vet: ## gofmt and go vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

test: vet testbin ## every test: unit, golden, fuzz seeds, real API server and real helm binaries
	$(GO) test -count=1 -timeout 75m ./...

test-unit: ## the tests that need no API server (go test -short)
	$(GO) test -short ./...

fuzz: ## fuzz the renderer for FUZZTIME (default 30s)
	$(GO) test ./renderer -run '^$$' -fuzz FuzzRender -fuzztime $(FUZZTIME)

bench: build ## speed and memory per stream shape (block, flow, comments+CRLF) against the yaml.v3 floor, and kubectl kustomize, one run
	$(GO) test ./renderer -run '^$$' -bench . -benchmem -benchtime 3x
	$(GO) run ./hack/bench -n $(BENCH_N) -helm-canary bin/helm-canary -check $(BENCH_FLAGS)

demo: build ## walk examples/productpage through every stage on a local API server
	$(GO) run ./hack/demo

clean: ## remove build output (the cached binaries stay in ~/.cache/helm-canary)
	rm -rf bin dist
