# Runtime bundle: the programs ketch carries and unpacks at start because they cannot be linked
# into the static ketch binary (see pkg/bundle). Versions come from the `tool` directives
# in go.mod. Include this file from the Makefile; it expects GO to be set.
#
# Builds pkg/bundle/bin/linux_<GOARCH>/programs.tar.zst (needs the zstd command) plus
# SHA256SUMS (of the programs): runc, containerd's runc shim (one process per pod, so it must be
# small, not a role of the ketch binary), crictl and the CNI plugins. runc needs cgo and libseccomp
# (Debian: libseccomp-dev pkg-config); it is linked statically so that a host needs no
# libseccomp or particular libc. Everything else is CGO_ENABLED=0. The recipe needs bash; it
# sets SHELL for itself, so that `make -f build/bundle.mk bundle` works on its own too.
#
# Every output is per architecture (pkg/bundle and pkg/images embed the directory of the GOARCH
# they are compiled for): `make bundle` builds ARCH's, this machine's unless told otherwise;
# `make release` builds each of RELEASE_ARCHES. For another architecture than this machine's,
# runc is cross-compiled with Debian's cross compiler (<triplet>-gcc) and the target's multiarch
# libseccomp (libseccomp-dev:<debian arch>): scripts/install-deps.sh --release installs both.

GO ?= go
# The architecture `make build`, `make bundle`, `make addons` and `make pause` build for: Go's
# (GOARCH in the environment, else this machine's), or `make build ARCH=arm64`. Not taken from
# an ARCH in the environment, which other build systems set with other meanings.
ARCH := $(shell $(GO) env GOARCH)
HOST_ARCH := $(shell $(GO) env GOHOSTARCH)
# The ARM version of GOARCH=arm builds (ignored for the others): ARMv7 with hardware floating
# point, Debian's armhf. Only the command line overrides it (make release GOARM=6).
GOARM := 7
# GNU triplet of each architecture's C toolchain and multiarch library directory.
TRIPLET_amd64 := x86_64-linux-gnu
TRIPLET_arm64 := aarch64-linux-gnu
TRIPLET_arm := arm-linux-gnueabihf
# The Go environment of a build for an architecture: go_env for $(1), arch_env for $*, the
# stem of the per-architecture rules.
go_env = GOOS=linux GOARCH=$(1)$(if $(filter arm,$(1)), GOARM=$(GOARM))
arch_env = $(call go_env,$*)
# The C toolchain of runc for $*: the default one natively, the cross compiler and the target's
# pkg-config directory otherwise (PKG_CONFIG_LIBDIR replaces the host's directories, so the
# host's libseccomp cannot be picked up by mistake).
cc_env = $(if $(filter $*,$(HOST_ARCH)),,CC=$(TRIPLET_$*)-gcc PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=/usr/lib/$(TRIPLET_$*)/pkgconfig:/usr/share/pkgconfig)

BUNDLE_ROOT := pkg/bundle/bin
BUNDLE_DIR = $(BUNDLE_ROOT)/linux_$(ARCH)
BUNDLE_RUNC := github.com/opencontainers/runc
# No loopback plugin: containerd brings up a pod's lo itself (pkg/agent/containerd, use_internal_loopback).
BUNDLE_CNI := \
	github.com/containernetworking/plugins/plugins/main/bridge \
	github.com/containernetworking/plugins/plugins/ipam/host-local \
	github.com/containernetworking/plugins/plugins/meta/portmap
BUNDLE_SHIM := github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
# crictl, which `ketch crictl` runs: its main cannot be imported either.
BUNDLE_CRICTL := sigs.k8s.io/cri-tools/cmd/crictl

# Static PIE where the C library supports it (as runc's own `make static` does: Debian has
# rcrt1.o for amd64 and arm64), plain static elsewhere (arm).
bundle_runc_link = $(if $(filter $(1),amd64 arm64),-buildmode=pie -ldflags "-s -w -linkmode external -extldflags -static-pie",-ldflags "-s -w -linkmode external -extldflags -static")
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
$(BUNDLE_ROOT)/linux_%/SHA256SUMS: SHELL := /bin/bash
$(BUNDLE_ROOT)/linux_%/SHA256SUMS: go.mod go.sum build/bundle.mk
	@set -euo pipefail; \
	[[ -n "$(TRIPLET_$*)" ]] || { echo "bundle: no C toolchain known for GOARCH=$*" >&2; exit 1; }; \
	command -v pkg-config >/dev/null && $(cc_env) pkg-config --exists libseccomp || \
		{ echo "bundle: runc for $* needs libseccomp: $(if $(filter $*,$(HOST_ARCH)),apt-get install libseccomp-dev pkg-config,scripts/install-deps.sh --release)" >&2; exit 1; }; \
	command -v zstd >/dev/null || { echo "bundle: needs zstd: apt-get install zstd" >&2; exit 1; }; \
	mkdir -p $(@D); \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "bundle ($*): runc"; \
	$(arch_env) $(cc_env) CGO_ENABLED=1 $(GO) build -trimpath -tags "$(BUNDLE_RUNC_TAGS)" $(call bundle_runc_link,$*) -o "$$tmp/runc" $(BUNDLE_RUNC); \
	echo "bundle ($*): containerd-shim-runc-v2"; \
	$(arch_env) CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(BUNDLE_SHIM_LDFLAGS)" -o "$$tmp/containerd-shim-runc-v2" $(BUNDLE_SHIM); \
	echo "bundle ($*): crictl"; \
	$(arch_env) CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(BUNDLE_CRICTL_LDFLAGS)" -o "$$tmp/crictl" $(BUNDLE_CRICTL); \
	for pkg in $(BUNDLE_CNI); do \
		echo "bundle ($*): $$(basename $$pkg)"; \
		$(arch_env) CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(BUNDLE_CNI_LDFLAGS)" -o "$$tmp/$$(basename $$pkg)" $$pkg; \
	done; \
	rm -f $(@D)/SHA256SUMS $(@D)/programs.tar.zst; \
	cd "$$tmp"; names=$$(ls); \
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - $$names | \
		zstd -q --ultra -22 --long=26 -o "$(CURDIR)/$(@D)/programs.tar.zst"; \
	sha256sum $$names > "$(CURDIR)/$(@D)/SHA256SUMS.tmp"; \
	mv "$(CURDIR)/$(@D)/SHA256SUMS.tmp" "$(CURDIR)/$(@D)/SHA256SUMS"; \
	echo "bundle ($*): $$(du -h $(CURDIR)/$(@D)/programs.tar.zst | cut -f1) compressed in $(@D)/programs.tar.zst"

# Removes every architecture's outputs; the committed .keep placeholders stay.
bundle-clean:
	rm -f $(BUNDLE_ROOT)/*/SHA256SUMS $(BUNDLE_ROOT)/*/SHA256SUMS.tmp $(BUNDLE_ROOT)/*/programs.tar.zst
	rm -f $(ADDONS_ROOT)/*/SHA256SUMS $(ADDONS_ROOT)/*/SHA256SUMS.tmp $(ADDONS_ROOT)/*/layer.tar.zst $(ADDONS_ROOT)/*/layer.diffid

# The addon image's layer: cmd/ketch-addons, the program of the addon image (pkg/images/addons.go),
# and the empty /tmp it needs, as the image layer itself (a zstd-compressed tar), in
# pkg/images/addons/linux_<GOARCH>/: a node hands it to containerd as it is, instead of unpacking
# the program, packing and compressing a layer and containerd decompressing it again (about a
# second of CPU of a first start). It is rebuilt when its sources change, not only its pins.
ADDONS_ROOT := pkg/images/addons
ADDONS_DIR = $(ADDONS_ROOT)/linux_$(ARCH)
# Every Go file of this module the program is built from, whichever package it is in.
ADDONS_SRC := $(shell $(GO) list -deps -f '{{with .Module}}{{if eq .Path "github.com/ketch-k8s/ketch"}}{{range $$.GoFiles}}{{$$.Dir}}/{{.}} {{end}}{{end}}{{end}}' ./cmd/ketch-addons 2>/dev/null)

.PHONY: addons dashboard-assets
addons: $(ADDONS_DIR)/SHA256SUMS

# The dashboard's front end: its sources and npm lockfile in pkg/addons/dashboard/ui, bundled by
# tools/dashboard-build (esbuild's Go library) into app.js and app.css beside index.html in
# pkg/addons/dashboard/web, which the dashboard role embeds. npm ci installs exactly the
# lockfile's packages, from npm's cache when they are there.
DASHBOARD_UI := pkg/addons/dashboard/ui
DASHBOARD_ASSETS := pkg/addons/dashboard/web/app.js
dashboard-assets: $(DASHBOARD_ASSETS)
$(DASHBOARD_ASSETS): $(wildcard $(DASHBOARD_UI)/src/*) $(DASHBOARD_UI)/package.json $(DASHBOARD_UI)/package-lock.json tools/dashboard-build/main.go go.mod go.sum
	@command -v npm >/dev/null || { echo "dashboard-assets: needs npm: scripts/install-deps.sh installs it" >&2; exit 1; }
	cd $(DASHBOARD_UI) && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	$(GO) run ./tools/dashboard-build -ui $(DASHBOARD_UI) -out $(dir $(DASHBOARD_ASSETS))

# The tar is made as pkg/images makes layers: sorted, owned by root, dated 0, modes set here,
# not by the umask. layer.diffid holds the digest and size of the uncompressed tar (the image
# config's diff ID, which containerd checks when it unpacks the layer); SHA256SUMS, the program's
# checksum (the image's tag comes from it), is written last.
$(ADDONS_ROOT)/linux_%/SHA256SUMS: SHELL := /bin/bash
$(ADDONS_ROOT)/linux_%/SHA256SUMS: go.mod go.sum build/bundle.mk $(ADDONS_SRC) $(DASHBOARD_ASSETS) $(wildcard pkg/addons/dashboard/web/*)
	@set -euo pipefail; \
	command -v zstd >/dev/null || { echo "addons: needs zstd: apt-get install zstd" >&2; exit 1; }; \
	mkdir -p $(@D); \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "addons ($*): ketch-addons"; \
	mkdir "$$tmp/root" "$$tmp/root/tmp"; \
	$(arch_env) CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags "-s -w -buildid=" -o "$$tmp/root/ketch-addons" ./cmd/ketch-addons; \
	chmod 0755 "$$tmp/root/ketch-addons"; chmod 1777 "$$tmp/root/tmp"; \
	rm -f $(@D)/SHA256SUMS $(@D)/layer.tar.zst $(@D)/layer.diffid $(@D)/programs.tar.zst; \
	(cd "$$tmp/root" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$$tmp/layer.tar" ketch-addons tmp); \
	zstd -q -19 -T0 --long=26 "$$tmp/layer.tar" -o "$(CURDIR)/$(@D)/layer.tar.zst"; \
	echo "sha256:$$(sha256sum < "$$tmp/layer.tar" | cut -d' ' -f1) $$(stat -c %s "$$tmp/layer.tar")" > "$(CURDIR)/$(@D)/layer.diffid"; \
	(cd "$$tmp/root" && sha256sum ketch-addons) > "$(CURDIR)/$(@D)/SHA256SUMS.tmp"; \
	mv "$(CURDIR)/$(@D)/SHA256SUMS.tmp" "$(CURDIR)/$(@D)/SHA256SUMS"; \
	echo "addons ($*): $$(du -h $(CURDIR)/$(@D)/layer.tar.zst | cut -f1) compressed in $(@D)/layer.tar.zst"
