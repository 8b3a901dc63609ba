# quorumguard build, test and tooling. `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN            := $(CURDIR)/bin
KUBE_VERSION   := v1.37.1
ETCD_VERSION   := v3.7.3
GOLANGCI_LINT_VERSION := v2.15.0
# The Prometheus module's version (Prometheus 3.x is tagged v0.3xx.y); hack/tools/promtool pins it.
PROMETHEUS_VERSION := v0.316.0
KUBE_LDFLAGS   := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
                  -X k8s.io/component-base/version.gitMajor=1 \
                  -X k8s.io/component-base/version.gitMinor=37 \
                  -X k8s.io/component-base/version.gitTreeState=clean
VERSION        := $(shell cat $(CURDIR)/VERSION)
REVISION       ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell test -z "$$(git status --porcelain 2>/dev/null)" || echo -dirty)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
VERSION_LDFLAGS := -X github.com/quorumguard/quorumguard/pkg/version.Version=$(VERSION) \
                  -X github.com/quorumguard/quorumguard/pkg/version.Revision=$(REVISION)
IMAGE_REPO     ?= quay.io/quorumguard/quorumguard
IMAGE_ARCH     ?= $(shell go env GOARCH)
IMAGE_BINARY   ?= $(BIN)/linux-$(IMAGE_ARCH)/quorumguard
IMAGE_OUT      ?= $(BIN)/quorumguard-image.tar
PLUGIN_DIR     ?= /usr/local/bin
GO_TEST_FLAGS  ?=
TEST_TIMEOUT   ?= 45m
E2E_SHARDS     ?= 1
export QUORUMGUARD_BIN_DIR := $(BIN)

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/quorumguard.
	go build -ldflags "$(VERSION_LDFLAGS)" -o $(BIN)/quorumguard ./cmd/quorumguard

.PHONY: install-plugin
install-plugin: build ## Install bin/quorumguard as the kubectl plugin kubectl-quorumguard in PLUGIN_DIR (/usr/local/bin), so `kubectl quorumguard status` works.
	install -D -m 0755 $(BIN)/quorumguard $(PLUGIN_DIR)/kubectl-quorumguard
	@echo "installed $(PLUGIN_DIR)/kubectl-quorumguard; try: kubectl quorumguard status --help"

.PHONY: image
image: ## Build the container image as an OCI archive, bin/quorumguard-image.tar (no daemon, no base image; IMAGE_REPO, IMAGE_OUT).
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) go build -trimpath -buildvcs=false -ldflags "-s -w $(VERSION_LDFLAGS)" -o $(IMAGE_BINARY) ./cmd/quorumguard
	cd hack/image && go run . --binary $(IMAGE_BINARY) --out $(IMAGE_OUT) --repository $(IMAGE_REPO) \
	  --version $(VERSION) --revision $(REVISION) --created $(SOURCE_DATE_EPOCH) --arch $(IMAGE_ARCH) \
	  --source https://github.com/quorumguard/quorumguard

.PHONY: tools
tools: ## Build the test control plane (kube-apiserver, kube-controller-manager, etcd), kubectl and promtool into bin/, once.
	@mkdir -p $(BIN)
	@cd hack/tools && for c in kube-apiserver kube-controller-manager kubectl; do \
	  if [ -x $(BIN)/$$c ] && { $(BIN)/$$c --version 2>/dev/null || $(BIN)/$$c version --client 2>/dev/null; } | grep -qx "Kubernetes $(KUBE_VERSION)\|Client Version: $(KUBE_VERSION)"; then \
	    echo "bin/$$c is $(KUBE_VERSION), kept"; \
	  else \
	    echo "building bin/$$c $(KUBE_VERSION) from the Go module proxy (a few minutes the first time)"; \
	    go build -ldflags "$(KUBE_LDFLAGS)" -o $(BIN)/$$c k8s.io/kubernetes/cmd/$$c; \
	  fi; \
	done
	@cd hack/tools && if [ -x $(BIN)/etcd ] && $(BIN)/etcd --version 2>/dev/null | grep -q "etcd Version: $(ETCD_VERSION:v%=%)"; then \
	    echo "bin/etcd is $(ETCD_VERSION), kept"; \
	  else \
	    echo "building bin/etcd $(ETCD_VERSION) from the Go module proxy"; \
	    go build -o $(BIN)/etcd go.etcd.io/etcd/server/v3; \
	  fi
	@cd hack/tools/promtool && if [ -x $(BIN)/promtool ] && $(BIN)/promtool --version 2>/dev/null | grep -q "version $(PROMETHEUS_VERSION) "; then \
	    echo "bin/promtool is $(PROMETHEUS_VERSION), kept"; \
	  else \
	    echo "building bin/promtool $(PROMETHEUS_VERSION) from the Go module proxy (about 6 minutes the first time)"; \
	    go build -ldflags "-X github.com/prometheus/common/version.Version=$(PROMETHEUS_VERSION)" -o $(BIN)/promtool github.com/prometheus/prometheus/cmd/promtool; \
	  fi

.PHONY: test
test: tools ## Run every test against the real control plane and real etcd, under the race detector (pkg/quorum, which starts no goroutine, without it); E2E_SHARDS end-to-end processes at once (hack/test.sh).
	QUORUMGUARD_CHAOS_STORE=$${QUORUMGUARD_CHAOS_STORE:-separate} TEST_TIMEOUT=$(TEST_TIMEOUT) GO_TEST_FLAGS="$(GO_TEST_FLAGS)" \
	  E2E_SHARDS=$(E2E_SHARDS) hack/test.sh

.PHONY: chaos
chaos: tools ## Model-check the planner deeper (MODEL_DEPTH), then 100 seeded chaos scenarios two at a time (CHAOS_SCENARIOS, CHAOS_SEED, CHAOS_WORKERS) and 4 on the protected store (CHAOS_PROTECTED); CHAOS_RACE=-race adds the race detector.
	QUORUMGUARD_MODEL_DEPTH=$${MODEL_DEPTH:-2} go test -count=1 -timeout 90m -run '^TestModelCheckPlanner$$' -v ./pkg/quorum/
	QUORUMGUARD_CHAOS_STORE=separate QUORUMGUARD_CHAOS=$${CHAOS_SCENARIOS:-100} QUORUMGUARD_CHAOS_SEED=$${CHAOS_SEED:-1} \
	  QUORUMGUARD_CHAOS_WORKERS=$${CHAOS_WORKERS:-2} \
	  go test $(CHAOS_RACE) -count=1 -timeout 300m -run '^TestChaos$$' -v ./test/e2e/ | grep --line-buffered -v '^{'
	QUORUMGUARD_CHAOS=$${CHAOS_PROTECTED:-4} QUORUMGUARD_CHAOS_SEED=$${CHAOS_SEED:-1} QUORUMGUARD_CHAOS_WORKERS=$${CHAOS_WORKERS:-2} \
	  go test $(CHAOS_RACE) -count=1 -timeout 120m -run '^TestChaos$$' -v ./test/e2e/ | grep --line-buffered -v '^{'

.PHONY: lint
lint: $(BIN)/golangci-lint ## Run golangci-lint (pinned, installed into bin/).
	$(BIN)/golangci-lint run ./...

$(BIN)/golangci-lint:
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: demo
demo: tools build ## Show a protected replacement, a rebalance and a leader failover on a local simulated cluster (DEMO_FLAGS=--keep keeps it up).
	@echo "building the demo driver"
	go build -o $(BIN)/quorumguard-demo ./cmd/demo
	$(BIN)/quorumguard-demo --quorumguard=$(BIN)/quorumguard $(DEMO_FLAGS)

.PHONY: bench
bench: tools build ## Run the Go benchmarks and the bench program; writes BENCHMARKS.md (takes ~20 min).
	go test -run '^$$' -bench . -benchtime 3x -timeout 30m ./pkg/... | tee $(BIN)/go-bench.txt
	go run ./cmd/bench $(BENCH_FLAGS)

.PHONY: bench-scale
bench-scale: tools build ## Replace control-plane Machines with etcd filled to production size (SCALE_SIZES=1GB,4GB; five members at the smallest) under a steady writer; writes its own section of BENCHMARKS.md (about 20 min on 2 cores).
	go run ./cmd/bench -only production -sizes $${SCALE_SIZES:-1GB,4GB} $(BENCH_FLAGS)
