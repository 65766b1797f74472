#!/usr/bin/env bash
# Installs what building and testing ketch need on a Debian machine. Run as root; idempotent.
# Go comes from /usr/local/go when present, otherwise the pinned toolchain is fetched as the module
# golang.org/toolchain from the Go module proxy the user names in GOPROXY.
#
# --release also installs what `make release` and `make test-release` need: for every release
# architecture other than this machine's, Debian's cross compiler and C library and the
# target's libseccomp (a multiarch package, so the architecture is added to dpkg), and
# qemu-user-static to run the foreign binaries. apt's sources are used as configured.
set -euo pipefail

release=false
for arg in "$@"; do
  case $arg in
  --release) release=true ;;
  *) echo "usage: $0 [--release]" >&2; exit 2 ;;
  esac
done

GO_VERSION=1.26.8
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "install-deps: $*" >&2; exit 1; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return
  [[ $(id -u) == 0 ]] || die "missing Debian packages ${missing[*]}; run as root"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
  # The proxy is the user's (GOPROXY, as the go command reads it): its first entry that is a URL.
  proxy=
  IFS=',|' read -ra entries <<<"${GOPROXY:-}"
  for entry in "${entries[@]}"; do
    if [[ $entry == http*://* ]]; then proxy=${entry%/}; break; fi
  done
  [[ -n $proxy ]] ||
    die "Go is not installed: install Go ${GO_VERSION} to /usr/local/go, or set GOPROXY to a Go module proxy to fetch it from"
  apt_install ca-certificates curl unzip
  arch=$(dpkg --print-architecture)
  zip=$(mktemp)
  curl -fsSL -o "$zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go${GO_VERSION}.linux-${arch}.zip" ||
    die "downloading Go ${GO_VERSION} from $proxy failed; install Go ${GO_VERSION} to /usr/local/go"
  rm -rf /usr/local/go.tmp && mkdir -p /usr/local/go.tmp
  unzip -q "$zip" -d /usr/local/go.tmp && rm -f "$zip"
  mv "/usr/local/go.tmp/golang.org/toolchain@v0.0.1-go${GO_VERSION}.linux-${arch}" /usr/local/go
  rm -rf /usr/local/go.tmp
  chmod +x /usr/local/go/bin/* /usr/local/go/pkg/tool/*/*
fi
go version >/dev/null || die "go does not run"

# Building: runc is linked statically with libseccomp. Running: iptables and conntrack for
# kube-proxy and the CNI plugins. Testing: tmpfs and FUSE mounts (util-linux's mount; the
# kernel's /dev/fuse), busybox-static for test images, Debian's containerd for the image
# import tests, which use it as a daemon independent of ketch's own, and for the installer's
# tests Docker (hosts with systemd or OpenRC as PID 1), debootstrap (their root file systems),
# and shellcheck, dash and busybox (install.sh and the scripts are POSIX sh). The node image
# (make image) ships Debian's iptables and mount with their libraries, and CA certificates; its
# tests run clusters in Docker, also from docker-compose.
apt_install util-linux procps iproute2 zstd libseccomp-dev pkg-config gcc libc6-dev iptables conntrack busybox-static containerd runc \
  docker.io docker-compose ca-certificates debootstrap shellcheck dash
# The multi-node harness (scripts/ketch-cluster.sh): openssl makes the external etcd members'
# certificates and curl asks them for their health; hostname names each node's UTS namespace.
apt_install openssl curl hostname
# The dashboard: npm installs its front end's packages from the lockfile (make dashboard-assets),
# and its browser test drives Debian's Chromium. A machine that has Node.js and npm already
# (from elsewhere than Debian) keeps them.
command -v npm >/dev/null || apt_install nodejs npm
apt_install chromium
if $release; then
  # GOARCH of each release binary (the Makefile's RELEASE_ARCHES) -> Debian architecture and
  # the package of its cross compiler. apt_install runs apt-get update when a package is
  # missing, which it is after an architecture was added.
  declare -A deb=([amd64]=amd64 [arm64]=arm64 [arm]=armhf)
  declare -A gcc=([amd64]=gcc-x86-64-linux-gnu [arm64]=gcc-aarch64-linux-gnu [arm]=gcc-arm-linux-gnueabihf)
  host=$(dpkg --print-architecture)
  pkgs=(qemu-user-static)
  for goarch in amd64 arm64 arm; do
    arch=${deb[$goarch]}
    [[ $arch == "$host" ]] && continue
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
      [[ $(id -u) == 0 ]] || die "dpkg lacks the $arch architecture; run as root"
      dpkg --add-architecture "$arch"
    fi
    pkgs+=("${gcc[$goarch]}" "libc6-dev-${arch}-cross" "libseccomp-dev:$arch")
  done
  apt_install "${pkgs[@]}"
fi
[[ -e /dev/fuse ]] || echo "install-deps: note: /dev/fuse is missing; the failed-fsync test will be skipped" >&2

cd "$repo"
# go.mod builds ketch with build/kubernetes, which this makes: before any go command in the module.
scripts/k8s-patches.sh
go mod download
