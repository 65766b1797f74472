# ketch: build, test and benchmark entry points. `sudo make run` and `sudo make test` are the two
# commands README.md promises for a fresh Debian machine.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/ketch
PKG := github.com/ketch-k8s/ketch
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The components report the versions go.mod pins, not v0.0.0-master.
K8S_VERSION = $(shell $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes)
CONTAINERD_VERSION = $(shell $(GO) list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
K8S_VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version
LDFLAGS = -s -w -X $(PKG)/pkg/version.Version=$(VERSION) -X $(PKG)/pkg/version.GitCommit=$(COMMIT) \
	$(foreach p,$(K8S_VERSION_PKGS),-X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=$(word 2,$(subst ., ,$(subst v,v ,$(K8S_VERSION)))) \
	-X $(p).gitMinor=$(word 2,$(subst ., ,$(K8S_VERSION))) -X $(p).gitTreeState=clean -X $(p).gitCommit=$(COMMIT)) \
	-X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)
export KETCH_BIN := $(abspath $(BIN))
# The same flags for build, vet and test, so that they share one build cache: otherwise go vet
# and go test compile the whole Kubernetes graph a second time (about 10 minutes on 2 cores).
# runc, the one cgo program, sets CGO_ENABLED=1 for itself (build/bundle.mk).
export CGO_ENABLED := 0
export GOFLAGS := -trimpath
# go.mod builds ketch with k8s.io/kubernetes from build/kubernetes: the pinned module with the
# patches ketch carries of it (build/patches/kubernetes/README.md). Every go command needs it,
# the $(shell go list) calls below included, so it is made while this file is read. Without go
# yet (a fresh machine), deps (scripts/install-deps.sh) makes it once it has installed go.
k8s_patches = PATH="$(PATH)" scripts/k8s-patches.sh
ifneq ($(shell PATH="$(PATH)"; command -v $(GO)),)
ifneq ($(shell $(k8s_patches) >&2 && echo ok),ok)
$(error scripts/k8s-patches.sh failed (above): ketch is built only with the patches in build/patches/kubernetes)
endif
endif

.PHONY: all build pause deps run test test-go test-fuzz test-apiserver-storage bench bench-datastore bench-server bench-multinode bench-ha bench-addons bench-docker docs fmt vet clean release release-build test-release image image-save release-images FORCE

all: build

include build/bundle.mk

# bin/ketch for ARCH (build/bundle.mk: this machine's architecture unless told otherwise).
build: bundle addons pause
	$(call go_env,$(ARCH)) $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ketch

# The pause binary's bytes name the pause image, so they must not change with the commit. One
# per architecture, in pkg/images/pause/linux_<GOARCH>/ (pkg/images embeds its GOARCH's).
PAUSE_ROOT := pkg/images/pause
pause: $(PAUSE_ROOT)/linux_$(ARCH)/pause
$(PAUSE_ROOT)/linux_%/pause: FORCE
	$(arch_env) $(GO) build -buildvcs=false -ldflags '-s -w -buildid=' -o $@ ./cmd/pause

# release builds dist/ketch-linux-<arch> for each of RELEASE_ARCHES (arm: GOARM=7, ARMv7 with
# hardware floating point), each with its own architecture's runtime bundle, addon program and
# pause program; copies install.sh and its service templates (package/) beside them, as
# install.sh expects a release directory; and writes dist/sha256sum.txt of all of them
# (`cd dist && sha256sum -c sha256sum.txt`). The C
# toolchains for runc come from `scripts/install-deps.sh --release` (root, once). The first
# build for a foreign architecture compiles the Kubernetes graph for it: about 20 minutes on 2
# cores (docs/benchmarks.md).
RELEASE_ARCHES := amd64 arm64 arm
RELEASE_BINS := $(RELEASE_ARCHES:%=dist/ketch-linux-%)
release:
	scripts/install-deps.sh --release
	$(MAKE) release-build

RELEASE_FILES := install.sh $(sort $(wildcard package/*))

release-build: $(RELEASE_BINS)
	rm -rf dist/package && mkdir -p dist/package
	cp -p --parents $(RELEASE_FILES) dist/
	cd dist && sha256sum $(notdir $(RELEASE_BINS)) $(RELEASE_FILES) > sha256sum.txt.tmp && mv sha256sum.txt.tmp sha256sum.txt
	@cd dist && ls -l $(notdir $(RELEASE_BINS)) && cat sha256sum.txt

$(RELEASE_BINS): dist/ketch-linux-%: $(BUNDLE_ROOT)/linux_%/SHA256SUMS $(ADDONS_ROOT)/linux_%/SHA256SUMS $(PAUSE_ROOT)/linux_%/pause FORCE
	@mkdir -p dist
	$(arch_env) $(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/ketch

# The per-architecture outputs are made by pattern rules; keep them after a release like the
# host's (make would otherwise delete them as intermediate files).
.SECONDARY: $(foreach a,$(RELEASE_ARCHES),$(BUNDLE_ROOT)/linux_$(a)/SHA256SUMS $(ADDONS_ROOT)/linux_$(a)/SHA256SUMS $(PAUSE_ROOT)/linux_$(a)/pause)

# test-release builds the release and its node images, and tests each binary on its
# architecture, the foreign ones under qemu user emulation (internal/release, build tag release):
# the ELF machine of the binary and of everything it carries, --version, check-config, the
# datastore with an etcd client, the bundled runc and CNI plugins, the unit tests of the packages
# that embed them, and the node image (its platform, and its programs with their libraries).
test-release: release-images
	KETCH_VERSION=$(VERSION) KETCH_RELEASE_ARCHES='$(RELEASE_ARCHES)' GOARM=$(GOARM) \
		$(GO) test -tags release -count=1 -v -timeout 60m ./internal/release

# image builds the node image (the Dockerfile, docs/docker.md) for ARCH from bin/ketch, with
# docker, podman or buildah (IMAGE_TOOL picks one), tagged IMAGE; image-save also writes it to
# dist/ketch-image-<arch>.tar. release-images builds the release and an image of each release
# binary, tagged ketch:<version>-<arch>, each saved to dist/ (the foreign architectures' iptables
# and mount come from Debian's packages for them: scripts/build-image.sh).
IMAGE ?= ketch:latest
image: build
	scripts/build-image.sh --arch $(ARCH) --ketch $(BIN) --tag $(IMAGE)

image-save: build
	scripts/build-image.sh --arch $(ARCH) --ketch $(BIN) --tag $(IMAGE) --save dist/ketch-image-$(ARCH).tar

release-images: release
	$(foreach a,$(RELEASE_ARCHES),scripts/build-image.sh --arch $(a) --ketch dist/ketch-linux-$(a) --tag ketch:$(VERSION)-$(a) --save dist/ketch-image-$(a).tar &&) true

FORCE:

# deps installs what building and testing need on a fresh Debian machine.
deps:
	scripts/install-deps.sh

# run builds ketch and starts a server with the default settings until Ctrl-C.
run: deps build
	$(BIN) server

test: deps build vet test-go test-fuzz test-apiserver-storage

test-go:
	$(GO) test -count=1 -timeout 40m ./...

FUZZTIME ?= 30s
test-fuzz:
	$(GO) test ./pkg/datastore/etcdapi -run '^$$' -fuzz FuzzRequests -fuzztime $(FUZZTIME)

test-apiserver-storage:
	scripts/test-apiserver-storage.sh

bench: bench-datastore bench-server bench-multinode bench-ha bench-addons

bench-datastore: build
	$(GO) run ./tools/ketch-bench datastore --ketch-bin $(KETCH_BIN) --out docs/benchmarks.md

# bench-server starts real servers: it needs root and a host with no other ketch node running.
bench-server: build
	$(GO) run ./tools/ketch-bench server --ketch-bin $(KETCH_BIN) --out docs/benchmarks.md

# bench-multinode brings up two 3-node clusters with scripts/ketch-cluster.sh (root; it holds
# /tmp/ketch-host.lock and takes them down at the end).
bench-multinode: build
	$(GO) run ./tools/ketch-bench multinode --ketch-bin $(KETCH_BIN) --out docs/benchmarks.md

# bench-ha brings up a lone bbolt server, a lone --cluster-init server and three servers on
# embedded etcd with an agent, one after the other, with scripts/ketch-cluster.sh (root; it holds
# /tmp/ketch-host.lock and takes them down at the end): failover after kill -9 of the leading
# server, memory and write throughput per store. About 15 minutes.
bench-ha: build
	$(GO) run ./tools/ketch-bench ha --ketch-bin $(KETCH_BIN) --out docs/benchmarks.md

# bench-addons starts real servers, like bench-server, and times the bundled addons (root; it
# holds /tmp/ketch-host.lock).
bench-addons: build
	$(GO) run ./tools/ketch-bench addons --ketch-bin $(KETCH_BIN) --out docs/benchmarks.md

# bench-docker times clusters in Docker (the node image, scripts/ketch-docker-cluster.sh) in a
# private Docker engine, cold and warm, and measures their idle memory (root; it holds
# /tmp/ketch-host.lock).
bench-docker: build
	$(GO) run ./tools/ketch-bench docker --ketch-bin $(KETCH_BIN) --out docs/benchmarks.md

# docs regenerates the command reference from the flag definitions; a test fails when it is stale.
docs:
	$(GO) run ./tools/reference docs/reference.md

fmt:
	gofmt -w cmd pkg internal tools manifests

vet:
	$(GO) vet ./...

clean: bundle-clean
	rm -rf bin dist $(PAUSE_ROOT)/*/pause
