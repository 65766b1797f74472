#!/usr/bin/env bash
# build-image.sh: build the node image (the Dockerfile at the repository root) for one
# architecture, with docker, podman or buildah, whichever is here; `make image`, `make
# image-save` and `make release-images` call it. No registry is involved: the image is FROM
# scratch, and its context is assembled by tools/node-image from the ketch binary and a Debian
# system root of the architecture (this machine's own for its architecture; for another one, the
# packages downloaded with apt-get from this machine's own apt sources and unpacked).
set -euo pipefail

usage() {
  cat <<EOF
Usage: $0 --arch ARCH --ketch BIN --tag TAG [--save FILE]
  --arch ARCH   amd64, arm64 or arm (the GOARCH of BIN)
  --ketch BIN   the ketch binary for ARCH
  --tag TAG     the image's name, such as ketch:latest
  --save FILE   also write the image as a docker-archive tarball (docker load -i FILE)
Environment: IMAGE_TOOL=docker|podman|buildah picks the tool (default: the first one here that
works, in that order).
EOF
}

die() {
  echo "build-image.sh: $*" >&2
  exit 1
}

arch='' ketch='' tag='' save=''
while [[ $# -gt 0 ]]; do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --ketch) ketch=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --save) save=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ -n $arch && -n $ketch && -n $tag ]] || { usage >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"

declare -A debarch=([amd64]=amd64 [arm64]=arm64 [arm]=armhf)
declare -A platform=([amd64]=linux/amd64 [arm64]=linux/arm64 [arm]=linux/arm/v7)
[[ -n ${debarch[$arch]:-} ]] || die "no node image for architecture $arch (amd64, arm64 or arm)"

foreign=false
[[ ${debarch[$arch]} == "$(dpkg --print-architecture)" ]] || foreign=true
# The tool: docker with a running engine, else podman, else buildah; for another architecture
# podman and buildah first, which label an image with any platform (docker needs BuildKit).
tool=${IMAGE_TOOL:-}
if [[ -z $tool ]]; then
  order=(docker podman buildah)
  $foreign && order=(podman buildah docker)
  for t in "${order[@]}"; do
    if command -v "$t" >/dev/null && { [[ $t != docker ]] || docker info >/dev/null 2>&1; }; then
      tool=$t
      break
    fi
  done
  [[ -n $tool ]] || die "no image tool: install docker.io (with a running dockerd), podman or buildah"
fi

# The system root: this machine's for its own architecture, else the target's packages.
sysroot=/
if $foreign; then
  sysroot=$repo/dist/image/sysroot-$arch
  if [[ ! -e $sysroot/.complete ]]; then
    dpkg --print-foreign-architectures | grep -qx "${debarch[$arch]}" ||
      die "dpkg does not know the architecture ${debarch[$arch]}: run scripts/install-deps.sh --release (as root) first"
    rm -rf "$sysroot" && mkdir -p "$sysroot/debs"
    # The packages of the programs the image carries and of the libraries they load;
    # tools/node-image fails if one is missing.
    pkgs=(iptables libxtables12 libip4tc2 libip6tc2 libnftnl11 libmnl0 libnetfilter-conntrack3 libnfnetlink0
      mount libmount1 libblkid1 libselinux1 libpcre2-8-0 libc6 libgcc-s1)
    (cd "$sysroot/debs" && apt-get download -qq "${pkgs[@]/%/:${debarch[$arch]}}") ||
      die "downloading the ${debarch[$arch]} packages failed (apt-get update may help)"
    for deb in "$sysroot"/debs/*.deb; do
      dpkg-deb -x "$deb" "$sysroot"
    done
    touch "$sysroot/.complete"
  fi
fi

context=$repo/dist/image/context-$arch
(cd "$repo" && go run ./tools/node-image --ketch "$ketch" --arch "$arch" --sysroot "$sysroot" --out "$context")
case $tool in
  # The classic builder labels every image with this machine's architecture: another one needs
  # BuildKit (docker.io's own client has it built in; newer clients need buildx).
  docker) DOCKER_BUILDKIT=$($foreign && echo 1 || echo 0) docker build --platform "${platform[$arch]}" --tag "$tag" --file "$repo/Dockerfile" "$context" ;;
  podman) podman build --platform "${platform[$arch]}" --tag "$tag" --file "$repo/Dockerfile" "$context" ;;
  buildah) buildah bud --platform "${platform[$arch]}" --tag "$tag" --file "$repo/Dockerfile" "$context" ;;
  *) die "IMAGE_TOOL=$tool: use docker, podman or buildah" ;;
esac
if [[ $tool != buildah ]]; then
  got=$($tool image inspect --format '{{.Architecture}}' "$tag")
  [[ $got == "$arch" ]] || die "$tag was built for $got, not $arch"
fi
if [[ -n $save ]]; then
  # podman and buildah would add to an existing archive, or refuse to.
  mkdir -p "$(dirname "$save")" && rm -f "$save"
  case $tool in
    docker) docker save --output "$save" "$tag" ;;
    podman) podman save --format docker-archive --output "$save" "$tag" ;;
    buildah) buildah push "$tag" "docker-archive:$save:$tag" ;;
  esac
  echo "build-image.sh: $tag written to $save ($(du -h "$save" | cut -f1))"
fi
