// Package release tests the release binaries that `make release` writes to dist/: for each
// architecture, that the binary and everything it carries (the runtime bundle, the addon
// program, the pause program) are built for that architecture, and that the binary runs there,
// under qemu user emulation on a machine of another architecture: `ketch --version`, `ketch
// check-config --output json`, `ketch datastore` answering an etcd client, and the bundled runc
// and CNI plugins. Its test is behind the build tag "release" (the first build for a foreign
// architecture takes about 20 minutes on 2 cores, so it stays out of `make test`); `make test-release` builds the release
// and runs it. See docs/testing.md.
package release
