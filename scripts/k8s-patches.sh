#!/usr/bin/env bash
# k8s-patches.sh: makes build/kubernetes, the k8s.io/kubernetes module that go.mod's replace
# directive builds ketch with: the module go.mod pins, from the module cache, with the patches
# ketch carries of it (build/patches/kubernetes/*.patch, against the module's root) applied.
#
# Only the directories that lead to a patched file are real, with their files copied; every
# other entry is a symbolic link into the module cache, so this takes no time and little room.
# It is rebuilt only when the pinned version, a patch or this script changes (a stamp file), and
# swapped in whole, so that a go command running meanwhile sees the old one or the new one.
# The Makefile runs it before any go command; scripts/install-deps.sh before `go mod download`.
set -euo pipefail

die() { echo "k8s-patches.sh: $*" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/build/kubernetes
patches=("$repo"/build/patches/kubernetes/*.patch)
mod=k8s.io/kubernetes
# Its own go commands run outside ketch's module, which cannot load before this has run.
export GOFLAGS=-mod=mod GOWORK=off

version=$(awk -v m="$mod" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$repo/go.mod")
[[ -n $version ]] || die "go.mod requires no version of $mod"
stamp="$version $(cat "$0" "${patches[@]}" | sha256sum | cut -d' ' -f1)"
if [[ -f $out/.ketch-stamp && $(cat "$out/.ketch-stamp") == "$stamp" ]]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work" "${new:-}"' EXIT
dl=$(cd "$work" && go mod download -json "$mod@$version" 2>&1) || die "go mod download $mod@$version failed:"$'\n'"$dl"
dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$dl")
[[ -n $dir && -d $dir ]] || die "go mod download reported no module directory for $mod@$version:"$'\n'"$dl"

# Apply the patches to copies of the files they change, in a directory of their own: git apply
# works as a plain patch program there (the ceiling keeps it from taking a repository above the
# work directory for its own).
files=()
for p in "${patches[@]}"; do
  [[ -e $p ]] || continue
  mapfile -t changed < <(sed -n 's#^+++ b/##p' "$p")
  [[ ${#changed[@]} -gt 0 ]] || die "$p names no file (+++ b/PATH lines)"
  for f in "${changed[@]}"; do
    [[ -f $dir/$f ]] || die "$p changes $f, which $mod $version does not have"
    if [[ ! -e $work/files/$f ]]; then
      mkdir -p "$work/files/$(dirname "$f")"
      install -m 0644 "$dir/$f" "$work/files/$f"
      files+=("$f")
    fi
  done
  (cd "$work/files" && GIT_CEILING_DIRECTORIES=$work git apply -p1 "$p") ||
    die "$(basename "$p") does not apply to $mod $version: refresh it against that version"
done

# The directories on the way to a patched file are real; the rest of their entries link into
# the module cache, except regular files, which are copied (go:embed refuses links).
declare -A real=([.]=1)
for f in "${files[@]}"; do
  d=$(dirname "$f")
  while [[ $d != . ]]; do real[$d]=1; d=$(dirname "$d"); done
done
new=$(mktemp -d "$out.new.XXXXXX")
for d in "${!real[@]}"; do
  mkdir -p "$new/$d"
  src=$dir
  [[ $d == . ]] || src=$dir/$d
  for e in "$src"/* "$src"/.[!.]*; do
    [[ -e $e || -L $e ]] || continue
    name=$(basename "$e") rel=${d#.}/$name rel=${rel#/}
    if [[ -n ${real[$rel]:-} ]]; then
      continue
    elif [[ -f $e && ! -L $e ]]; then
      install -m 0644 "$e" "$new/$rel"
    else
      ln -s "$e" "$new/$rel"
    fi
  done
done
for f in "${files[@]}"; do
  install -m 0644 "$work/files/$f" "$new/$f"
done
echo "$stamp" >"$new/.ketch-stamp"
chmod 0755 "$new"
old=$(mktemp -d "$out.old.XXXXXX")
[[ ! -e $out ]] || mv -T "$out" "$old"
# -T: should another run have put its own in place meanwhile, fail rather than move into it.
mv -T "$new" "$out" || [[ $(cat "$out/.ketch-stamp" 2>/dev/null) == "$stamp" ]] ||
  die "could not put $new in place of $out"
rm -rf "$old"
