// Package deploy applies the manifests in <data-dir>/server/manifests to the cluster, as k3s's
// deploy controller does: the bundled addons, which the server writes there with WriteBundled,
// and whatever the administrator adds.
//
// Every *.yaml and *.yml file in the directory (not hidden files, not subdirectories) is a
// multi-document manifest; a List document stands for its items. Files are applied in name
// order and documents in file order, by server-side apply with field manager "ketch", at start,
// whenever a file's content changes, and again on every resync while a file keeps failing.
// "<file>.skip" next to a file leaves it alone: neither applied nor overwritten by WriteBundled,
// and its objects are not deleted.
//
// Each file has a record, ConfigMap kube-system/<RecordName(file)>, labelled
// app.kubernetes.io/managed-by=ketch and ketch.io/manifest=true, annotated with
// ketch.io/manifest-file (the file name) and ketch.io/manifest-sha256 (the hex sha256 of the
// content it last applied completely). Its data key "objects" is a JSON array of the objects the
// file created, one per line:
//
//	[
//	{"apiVersion":"v1","kind":"ServiceAccount","namespace":"kube-system","name":"coredns"},
//	{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","name":"system:coredns"}
//	]
//
// Records are what let deletion survive restarts: objects a file's record lists but its new
// content no longer holds are deleted, and so is everything a record lists once its file is
// gone (and not marked .skip), even if that happened while the server was down. An object that
// another file still holds is never deleted, so moving a document or renaming a file is safe.
//
// Failures are logged and reported as Events on the file's record: Warning ParseFailed (the file
// cannot be read or parsed; nothing is applied or deleted, so a typo never removes a running
// addon), Warning ApplyFailed (some objects were not applied; nothing is deleted until the whole
// file applies), Warning DeleteFailed (objects to remove could not be deleted; they stay in the
// record), and Normal Applied when changed content applied completely.
package deploy
