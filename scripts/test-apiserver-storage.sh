#!/usr/bin/env bash
# Runs the upstream Kubernetes storage tests (the _test.go files of k8s.io/apiserver/pkg/storage/etcd3,
# which drive the k8s.io/apiserver/pkg/storage/testing suite) against ketch's datastore instead of etcd.
#
# The pinned k8s.io/apiserver version is copied from the module cache into a scratch directory, its
# pkg/storage/etcd3/testserver/test_server.go is replaced by
# pkg/datastore/testdata/apiserver-storage/test_server.go (which starts `$KETCH_BIN datastore` as a
# subprocess per test instead of an embedded etcd), and the package is tested there. Nothing else upstream
# is patched. Subpackages (etcd3/metrics, etcd3/preflight, ...) are out of scope: they do not talk to a
# datastore.
#
# Environment:
#   KETCH_BIN           ketch binary to test (required; `make test-apiserver-storage` sets it to bin/ketch)
#   APISERVER_VERSION   k8s.io/apiserver version to take the tests from; default: the version in ketch's
#                       go.mod if it requires k8s.io/apiserver, else v0.36.3
#   GO_TEST_RUN         optional -run regexp, to run a subset while debugging
#   GO_TEST_TIMEOUT     go test -timeout (default 30m)
#   VERBOSE=1           stream the full `go test -v` output instead of one line per test
#   KEEP_SCRATCH=1      keep the scratch directory (copied module and full test log) for inspection
set -euo pipefail

# Tests not run, passed to `go test -skip`: one top-level test name per line, followed by a comment giving
# the reason in one line, e.g.
#   TestFoo # needs etcd's in-process raft internals
# Keep docs/datastore.md's test section in sync with this list. Empty: every test passes against the datastore.
SKIP_TESTS=(
)

DEFAULT_APISERVER_VERSION=v0.36.3
# The upstream package under test, relative to the module root.
TEST_PKG=./pkg/storage/etcd3/
UPSTREAM_TESTSERVER=pkg/storage/etcd3/testserver/test_server.go

die() {
  echo "test-apiserver-storage: $*" >&2
  exit 1
}
log() {
  echo "test-apiserver-storage: $*"
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
replacement="$repo/pkg/datastore/testdata/apiserver-storage/test_server.go"
[[ -f "$replacement" ]] || die "replacement test server not found at $replacement"
command -v go >/dev/null || die "go is not on PATH (scripts/install-deps.sh lists the prerequisites)"

[[ -n "${KETCH_BIN:-}" ]] || die "KETCH_BIN is not set: point it at the ketch binary to test (make test-apiserver-storage sets it to bin/ketch)"
# The tests run with the scratch package as working directory, so hand them an absolute path.
ketch_bin=$(realpath -e -- "$KETCH_BIN" 2>/dev/null) || die "KETCH_BIN=$KETCH_BIN does not exist (run make build first?)"
[[ -f "$ketch_bin" && -x "$ketch_bin" ]] || die "KETCH_BIN=$KETCH_BIN is not an executable file"

# Which k8s.io/apiserver to take the tests from.
if [[ -n "${APISERVER_VERSION:-}" ]]; then
  version=$APISERVER_VERSION
  version_source="APISERVER_VERSION"
elif listed=$(cd "$repo" && go list -m -f '{{if .Replace}}{{.Replace.Path}} {{.Replace.Version}}{{else}}{{.Path}} {{.Version}}{{end}}' k8s.io/apiserver 2>/dev/null); then
  # Kubernetes' staging modules are pinned with a replace to a released version of the same
  # module; a replace to anything else (a fork, a local directory) is not what upstream tests.
  [[ "$listed" == "k8s.io/apiserver v"* ]] || die "go.mod replaces k8s.io/apiserver with $listed; set APISERVER_VERSION to the version to test"
  version=${listed#k8s.io/apiserver }
  version_source="go.mod"
elif grep -q '^[[:space:]]*k8s.io/apiserver[[:space:]]' "$repo/go.mod"; then
  # go.mod names it but go list failed: do not silently fall back to a version ketch does not use.
  die "go.mod requires k8s.io/apiserver but 'go list -m k8s.io/apiserver' fails in $repo; fix the module or set APISERVER_VERSION"
else
  version=$DEFAULT_APISERVER_VERSION
  version_source="default"
fi
[[ -n "$version" ]] || die "could not determine the k8s.io/apiserver version"

work=$(mktemp -d "${TMPDIR:-/tmp}/ketch-apiserver-storage.XXXXXX")
cleanup() {
  if [[ "${KEEP_SCRATCH:-}" == 1 ]]; then
    log "kept scratch directory $work"
  else
    rm -rf -- "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Everything below runs on the scratch copy only: its own go.mod/go.sum, -mod=mod so that go may fetch
# and record whatever the tests need, and no workspace file leaking in. ketch's go.mod is never touched.
export GOFLAGS=-mod=mod GOWORK=off

log "k8s.io/apiserver $version ($version_source), ketch binary $ketch_bin"
# Run outside any module so that the download cannot touch ketch's go.mod/go.sum.
dl_json=$(cd "$work" && go mod download -json "k8s.io/apiserver@$version" 2>&1) ||
  die "go mod download k8s.io/apiserver@$version failed:"$'\n'"$dl_json"
src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$dl_json")
[[ -n "$src" && -d "$src" ]] || die "go mod download did not report a module directory:"$'\n'"$dl_json"

mod="$work/apiserver"
mkdir -p "$mod"
cp -R -- "$src/." "$mod/"
# The module cache is read-only; the copy must be writable (go.sum updates, and removing it afterwards).
chmod -R u+w "$mod"
[[ -f "$mod/$UPSTREAM_TESTSERVER" ]] ||
  die "k8s.io/apiserver@$version has no $UPSTREAM_TESTSERVER; the upstream test layout changed, update this script"
cp -- "$replacement" "$mod/$UPSTREAM_TESTSERVER"

cd "$mod"

# List the package's tests: compiles the test binary once (reused by the run below) and lets a stale
# skip-list entry be reported instead of silently matching nothing.
list_out=$(go test -list '.*' "$TEST_PKG" 2>&1) || die "building the tests of $TEST_PKG failed:"$'\n'"$list_out"
mapfile -t all_tests < <(grep -E '^(Test|Example|Fuzz)' <<<"$list_out" || true)
for skipped in "${SKIP_TESTS[@]}"; do
  grep -qxF -- "$skipped" <<<"$list_out" ||
    log "warning: skip-list entry $skipped is not a test of $TEST_PKG at $version"
done

test_args=(-count=1 -v -timeout "${GO_TEST_TIMEOUT:-30m}")
if ((${#SKIP_TESTS[@]} > 0)); then
  test_args+=(-skip "^($(IFS='|'; echo "${SKIP_TESTS[*]}"))\$")
fi
if [[ -n "${GO_TEST_RUN:-}" ]]; then
  test_args+=(-run "$GO_TEST_RUN")
fi

test_log="$work/go-test.log"
log "testing k8s.io/apiserver/${TEST_PKG#./}: ${#all_tests[@]} tests, ${#SKIP_TESTS[@]} on the skip list${GO_TEST_RUN:+, -run $GO_TEST_RUN}"
start=$SECONDS
# Show one line per finished test (and any subtest failure or panic) while the full output goes to the
# log, which is replayed below for the tests that failed.
progress='^(--- |[[:space:]]+--- FAIL|panic:|FAIL|ok[[:space:]])'
if [[ "${VERBOSE:-}" == 1 ]]; then
  progress=''
fi
# The tests' t.TempDir()s (datastore data dirs and logs) go under the scratch directory too, so that
# they are removed even when the test binary dies before its cleanups run (e.g. on -timeout).
test_tmp="$work/tmp"
mkdir -p "$test_tmp"
set +e
KETCH_BIN="$ketch_bin" TMPDIR="$test_tmp" go test "${test_args[@]}" "$TEST_PKG" 2>&1 |
  tee "$test_log" | { grep -a --line-buffered -E -- "$progress" || true; }
rc=${PIPESTATUS[0]}
set -e
elapsed=$((SECONDS - start))

[[ -f "$test_log" ]] || die "the test log $test_log disappeared (was the scratch directory removed during the run?)"
count() {
  # grep -c exits 1 when nothing matches (still printing 0); anything else is a real error.
  grep -acE -- "$1" "$test_log" || (($? == 1)) || die "cannot read $test_log"
}
passed=$(count '^--- PASS: ')
failed=$(count '^--- FAIL: ')
skipped=$(count '^--- SKIP: ')
sub_passed=$(count '^[[:space:]]+--- PASS: ')
sub_failed=$(count '^[[:space:]]+--- FAIL: ')
sub_skipped=$(count '^[[:space:]]+--- SKIP: ')

if ((failed > 0)); then
  echo
  echo "=== output of the failed tests ==="
  # Attribute every line to the top-level test named by the latest === RUN/CONT/NAME/PAUSE header and
  # print the lines of each test that ended in --- FAIL.
  awk '
    /^=== (RUN|CONT|NAME|PAUSE) / { split($3, parts, "/"); cur = parts[1] }
    { buf[cur] = buf[cur] $0 "\n" }
    /^--- FAIL: / { printf "%s", buf[$3] }
  ' "$test_log"
fi
if ((rc != 0)) && { ((failed == 0)) || grep -aq '^panic: ' "$test_log"; }; then
  # Build failure, timeout or panic, whose trace follows the last test result: show the end of the output.
  echo
  echo "=== go test exited with status $rc; last 200 lines of output ==="
  tail -n 200 "$test_log"
fi

echo
log "k8s.io/apiserver@$version ${TEST_PKG#./} against $ketch_bin: tests ran ${elapsed}s, ${SECONDS}s in all"
log "tests:    $passed passed, $failed failed, $skipped skipped by the tests, ${#SKIP_TESTS[@]} skipped by the skip list"
log "subtests: $sub_passed passed, $sub_failed failed, $sub_skipped skipped"
if ((${#SKIP_TESTS[@]} > 0)); then
  log "skip list (reasons in $0): ${SKIP_TESTS[*]}"
fi
if ((skipped + sub_skipped > 0)); then
  log "skipped by the tests themselves:"
  grep -aE '^[[:space:]]*--- SKIP: ' "$test_log" | sed 's/^/    /'
fi
if ((rc != 0 || failed > 0)); then
  log "FAIL"
  exit 1
fi
log "PASS"
