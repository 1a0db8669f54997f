# apim-arc-gateway: Azure API Management self-hosted gateway as an Azure Arc
# cluster extension. `make` lists the targets.

GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# Reference written into the archives of `make image`.
IMAGE    ?= example.local/apim-arc-gateway:$(VERSION)
# Addresses of `make run`; override when a port is taken.
HTTP_ADDR      ?= 127.0.0.1:8080
TELEMETRY_ADDR ?= 127.0.0.1:9090
ECHO_ADDR      ?= 127.0.0.1:9080
# Benchmark knobs (see BENCHMARKS.md).
BENCH_DURATION ?= 10s
BENCH_RUNS     ?= 3

.DEFAULT_GOAL := help
.PHONY: help build run test test-short bench bench-go bench-load lint fmt clean k8s-bins e2e generate check-generated image release-check

help: ## Show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build apim-gateway, apim-agent and the demo echo backend into bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/apim-gateway ./gateway/cmd/apim-gateway
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/apim-agent ./extension/cmd/apim-agent
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/echo-backend ./examples/echo-backend

run: build ## Run the gateway on examples/demo with a local echo backend (Ctrl-C stops)
	@HTTP_ADDR=$(HTTP_ADDR) TELEMETRY_ADDR=$(TELEMETRY_ADDR) ECHO_ADDR=$(ECHO_ADDR) BIN=$(BIN) scripts/run-demo.sh

test: lint check-generated ## Lint, check generated files, then run every test with the race detector
	bins=$$(scripts/k8s/build-binaries.sh apiserver) && KUBE_BIN_DIR="$$(echo "$$bins" | tail -n1)" $(GO) test -race -count=1 -timeout 20m ./...

test-short: ## Run the tests without the race detector
	$(GO) test -count=1 ./...

k8s-bins: ## Build (cached by version) etcd, the Kubernetes binaries and helm for the real-cluster tests
	scripts/k8s/build-binaries.sh all

e2e: ## As root: single-node cluster in a network namespace, run test/e2e against it, tear down
	scripts/k8s/e2e.sh

bench: bench-go bench-load ## Go benchmarks, then the loopback load comparison with nginx

bench-go: ## Go benchmarks (allocations reported): gateway, then the agent's monitoring pipeline
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./gateway/...
	$(GO) test -run '^$$' -bench . -benchtime 1000000x ./extension/monitoring/

bench-load: build ## wrk against the backend directly, through nginx and through the gateway
	BIN=$(BIN) DURATION=$(BENCH_DURATION) RUNS=$(BENCH_RUNS) scripts/bench/loopback.sh

generate: ## Regenerate the chart's values.schema.json and settings catalog from schemas/extension-settings.schema.json
	$(GO) run ./scripts/gen-values-schema

check-generated: ## Fail if a generated file is stale (run `make generate`)
	$(GO) run ./scripts/gen-values-schema -check

release-check: ## Package the chart into dist/charts, check extension-manifest.yaml (trains, packages, forward-only vs HEAD) and the portal files
	$(GO) run ./scripts/release-train package --out dist/charts
	@base=$$(mktemp); trap 'rm -f "$$base"' EXIT; \
	if git show HEAD:extension-manifest.yaml >"$$base" 2>/dev/null; then \
		$(GO) run ./scripts/release-train check --charts dist/charts --base "$$base"; \
	else \
		$(GO) run ./scripts/release-train check --charts dist/charts; \
	fi
	$(GO) test -count=1 ./schemas/portal/ ./scripts/release-train/... ./scripts/arc-emulator/...

image: ## Build the image (linux/amd64, linux/arm64) without Docker: OCI layout tar + docker-archives in $(BIN)/image
	$(GO) run ./scripts/image -version $(VERSION) -tag $(IMAGE) -out $(BIN)/image

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt: ## Format the Go code
	gofmt -w $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')

clean: ## Remove build output
	rm -rf $(BIN)
