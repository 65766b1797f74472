# Runtime bundle: the programs ketch carries and unpacks at start because they cannot be linked
# into the static ketch binary (see pkg/bundle). Versions come from the `tool` directives
# in go.mod. Include this file from the Makefile; it expects GO to be set.
#
# Builds pkg/bundle/bin/programs.tar.zst (needs the zstd command) plus SHA256SUMS (of the
# programs): runc, containerd's runc shim (one process per pod, so it must be small, not a
# role of the ketch binary) and the CNI plugins. runc needs cgo and libseccomp (Debian:
# libseccomp-dev pkg-config); it is linked statically so that a host needs no libseccomp or
# particular libc. Everything else is
# CGO_ENABLED=0. The recipe needs bash; it sets SHELL for itself, so that
# `make -f build/bundle.mk bundle` works on its own too.

GO ?= go
BUNDLE_DIR := pkg/bundle/bin
BUNDLE_RUNC := github.com/opencontainers/runc
BUNDLE_CNI := \
	github.com/containernetworking/plugins/plugins/main/bridge \
	github.com/containernetworking/plugins/plugins/ipam/host-local \
	github.com/containernetworking/plugins/plugins/main/loopback \
	github.com/containernetworking/plugins/plugins/meta/portmap
BUNDLE_SHIM := github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
# crictl, which `ketch crictl` runs: its main cannot be imported either.
BUNDLE_CRICTL := sigs.k8s.io/cri-tools/cmd/crictl

# Static PIE where the C library supports it (as runc's own `make static` does), plain static
# elsewhere.
BUNDLE_GOARCH := $(shell $(GO) env GOARCH)
ifneq (,$(filter $(BUNDLE_GOARCH),amd64 arm64))
BUNDLE_RUNC_LINK := -buildmode=pie -ldflags "-s -w -linkmode external -extldflags -static-pie"
else
BUNDLE_RUNC_LINK := -ldflags "-s -w -extldflags -static"
endif
BUNDLE_RUNC_TAGS := seccomp urfave_cli_no_docs netgo osusergo
# The CNI plugins report their version (`bridge version`) from this variable.
BUNDLE_CNI_LDFLAGS = -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$(shell $(GO) list -m -f '{{.Version}}' github.com/containernetworking/plugins)

BUNDLE_SHIM_LDFLAGS = -X github.com/containerd/containerd/v2/version.Version=$(shell $(GO) list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
BUNDLE_CRICTL_LDFLAGS = -X sigs.k8s.io/cri-tools/pkg/version.Version=$(shell $(GO) list -m -f '{{.Version}}' sigs.k8s.io/cri-tools)

.PHONY: bundle bundle-clean

bundle: $(BUNDLE_DIR)/SHA256SUMS

# Rebuilt when the pinned versions (go.mod/go.sum) or this recipe change.
# Programs are built into a temporary directory and the SHA256SUMS is written last, so an
# interrupted build never leaves a bundle whose checksums do not match its files.
$(BUNDLE_DIR)/SHA256SUMS: SHELL := /bin/bash
$(BUNDLE_DIR)/SHA256SUMS: go.mod go.sum build/bundle.mk
	@set -euo pipefail; \
	command -v pkg-config >/dev/null && pkg-config --exists libseccomp || \
		{ echo "bundle: runc needs libseccomp: apt-get install libseccomp-dev pkg-config" >&2; exit 1; }; \
	command -v zstd >/dev/null || { echo "bundle: needs zstd: apt-get install zstd" >&2; exit 1; }; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "bundle: runc"; \
	CGO_ENABLED=1 $(GO) build -trimpath -tags "$(BUNDLE_RUNC_TAGS)" $(BUNDLE_RUNC_LINK) -o "$$tmp/runc" $(BUNDLE_RUNC); \
	echo "bundle: containerd-shim-runc-v2"; \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(BUNDLE_SHIM_LDFLAGS)" -o "$$tmp/containerd-shim-runc-v2" $(BUNDLE_SHIM); \
	echo "bundle: crictl"; \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(BUNDLE_CRICTL_LDFLAGS)" -o "$$tmp/crictl" $(BUNDLE_CRICTL); \
	for pkg in $(BUNDLE_CNI); do \
		echo "bundle: $$(basename $$pkg)"; \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(BUNDLE_CNI_LDFLAGS)" -o "$$tmp/$$(basename $$pkg)" $$pkg; \
	done; \
	rm -f $(BUNDLE_DIR)/SHA256SUMS $(BUNDLE_DIR)/programs.tar.zst; \
	cd "$$tmp"; names=$$(ls); \
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - $$names | \
		zstd -q --ultra -22 --long=26 -o "$(CURDIR)/$(BUNDLE_DIR)/programs.tar.zst"; \
	sha256sum $$names > "$(CURDIR)/$(BUNDLE_DIR)/SHA256SUMS.tmp"; \
	mv "$(CURDIR)/$(BUNDLE_DIR)/SHA256SUMS.tmp" "$(CURDIR)/$(BUNDLE_DIR)/SHA256SUMS"; \
	echo "bundle: $$(du -h $(CURDIR)/$(BUNDLE_DIR)/programs.tar.zst | cut -f1) compressed in $(BUNDLE_DIR)/programs.tar.zst"

bundle-clean:
	rm -f $(BUNDLE_DIR)/SHA256SUMS $(BUNDLE_DIR)/SHA256SUMS.tmp $(BUNDLE_DIR)/programs.tar.zst
	rm -f $(ADDONS_DIR)/SHA256SUMS $(ADDONS_DIR)/SHA256SUMS.tmp $(ADDONS_DIR)/programs.tar.zst

# Addon bundle: cmd/ketch-addons, the program of the addon image (pkg/images/addons.go), in
# the same archive format. It is rebuilt when its sources change, not only its pins.
ADDONS_DIR := pkg/images/addons
# Every Go file of this module the program is built from, whichever package it is in.
ADDONS_SRC := $(shell $(GO) list -deps -f '{{with .Module}}{{if eq .Path "github.com/ketch-k8s/ketch"}}{{range $$.GoFiles}}{{$$.Dir}}/{{.}} {{end}}{{end}}{{end}}' ./cmd/ketch-addons 2>/dev/null)

.PHONY: addons
addons: $(ADDONS_DIR)/SHA256SUMS

$(ADDONS_DIR)/SHA256SUMS: SHELL := /bin/bash
$(ADDONS_DIR)/SHA256SUMS: go.mod go.sum build/bundle.mk $(ADDONS_SRC)
	@set -euo pipefail; \
	command -v zstd >/dev/null || { echo "addons: needs zstd: apt-get install zstd" >&2; exit 1; }; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "addons: ketch-addons"; \
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags "-s -w -buildid=" -o "$$tmp/ketch-addons" ./cmd/ketch-addons; \
	rm -f $(ADDONS_DIR)/SHA256SUMS $(ADDONS_DIR)/programs.tar.zst; \
	cd "$$tmp"; \
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - ketch-addons | \
		zstd -q -19 -T0 --long=26 -o "$(CURDIR)/$(ADDONS_DIR)/programs.tar.zst"; \
	sha256sum ketch-addons > "$(CURDIR)/$(ADDONS_DIR)/SHA256SUMS.tmp"; \
	mv "$(CURDIR)/$(ADDONS_DIR)/SHA256SUMS.tmp" "$(CURDIR)/$(ADDONS_DIR)/SHA256SUMS"; \
	echo "addons: $$(du -h $(CURDIR)/$(ADDONS_DIR)/programs.tar.zst | cut -f1) compressed in $(ADDONS_DIR)/programs.tar.zst"
