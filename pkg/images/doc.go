// Package images builds the images a ketch node produces for itself and loads image tarballs
// into the node's containerd, so that no node ever needs a registry (see DESIGN.md, "Images
// without a registry").
//
// Building: Build turns a few in-memory or on-disk files into a single-platform OCI image whose
// bytes depend only on its inputs (fixed timestamps, uid/gid 0, explicit modes, sorted
// entries, a gzip header without name or time), and writes it as an OCI image layout tarball
// or a docker-archive (`docker save`) tarball. PauseImage is the pod sandbox image made that
// way from the pause program in cmd/pause. The addon image (EnsureAddonsImage) is assembled the
// same way around a layer the Makefile made: a zstd tar of cmd/ketch-addons, imported as it is.
//
// Naming: images a node makes are called localhost/ketch/<short>:<tag>, where the tag is the
// first 16 hex digits of the image's manifest digest (LocalName). "localhost/" is podman's
// convention for locally built images; it also means a node that somehow lacks the image can
// never pull a look-alike from Docker Hub, and the digest in the tag means a name exists in
// containerd only if exactly these bytes were imported, so a restart imports nothing.
//
// Importing: Import and ImportDir load tarballs into containerd's CRI namespace (k8s.io) through
// containerd's own client.Import and unpack them for the overlayfs snapshotter, as
// `ctr images import` does. Images that carry no name in the archive are named
// localhost/import@<manifest digest> (UnnamedRepo).
package images
