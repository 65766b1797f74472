# ketch: build, test and benchmark entry points. `sudo make run` and `sudo make test` are the two
# commands README.md promises for a fresh Debian machine.
SHELL := /bin/bash
GO ?= go
BIN := bin/ketch
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKG := github.com/ketch-k8s/ketch
LDFLAGS := -s -w -X $(PKG)/pkg/version.Version=$(VERSION) -X $(PKG)/pkg/version.GitCommit=$(COMMIT)
export KETCH_BIN := $(abspath $(BIN))

.PHONY: all build deps run test test-go test-fuzz test-apiserver-storage bench bench-datastore fmt vet clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ketch

# deps installs what building and testing need on a fresh Debian machine.
deps:
	scripts/install-deps.sh

# run starts the datastore on the default data dir until Ctrl-C (ketch server replaces it once it exists).
run: deps build
	$(BIN) datastore --data-dir /var/lib/ketch/server/db --listen-client-urls http://127.0.0.1:2379

test: deps build vet test-go test-fuzz test-apiserver-storage

test-go:
	$(GO) test -count=1 -timeout 30m ./...

FUZZTIME ?= 30s
test-fuzz:
	$(GO) test ./pkg/datastore/server -run '^$$' -fuzz FuzzRequests -fuzztime $(FUZZTIME)

test-apiserver-storage:
	scripts/test-apiserver-storage.sh

bench: bench-datastore

bench-datastore: build
	$(GO) run ./cmd/ketch-bench datastore --ketch-bin $(KETCH_BIN) --out docs/benchmarks.md

fmt:
	gofmt -w cmd pkg internal

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
