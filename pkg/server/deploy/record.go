package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

const (
	recordPrefix   = "ketch-manifest-"
	recordLabel    = "ketch.io/manifest"
	fileAnnotation = "ketch.io/manifest-file"
	shaAnnotation  = "ketch.io/manifest-sha256"
	objectsKey     = "objects"
	maxNameLength  = 253
)

var (
	recordLabels = map[string]string{"app.kubernetes.io/managed-by": "ketch", recordLabel: "true"}
	// plainName is a file name that maps to a record name without loss: a lowercase stem of
	// letters, digits and dashes, and the extension.
	plainName = regexp.MustCompile(`^[a-z0-9-]+\.(yaml|yml)$`)
	unsafe    = regexp.MustCompile(`[^a-z0-9]`)
)

// RecordName is the name of the ConfigMap in kube-system recording what the manifest file
// created: "coredns.yaml" -> "ketch-manifest-coredns-yaml". A name that does not map one-to-one
// (upper case, dots or other characters in the stem, or too long) also gets a hash of the file
// name, "my_app.yaml" -> "ketch-manifest-my-app-yaml-<10 hex digits>", so that no two files
// share a record.
func RecordName(file string) string {
	name := recordPrefix + unsafe.ReplaceAllString(strings.ToLower(file), "-")
	if plainName.MatchString(file) && len(name) <= maxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(file))
	suffix := "-" + hex.EncodeToString(sum[:5])
	if len(name) > maxNameLength-len(suffix) {
		name = name[:maxNameLength-len(suffix)]
	}
	return name + suffix
}

// record is a file's record as listed at the start of a pass.
type record struct {
	cm      *corev1.ConfigMap
	sha     string
	objects []objectRef
}

type records struct {
	client kubernetes.Interface
}

// list returns the records by file name. A record whose object list is damaged is left out,
// with an error logged: deleting by a guess could remove objects no manifest created.
func (r records) list(ctx context.Context) (map[string]*record, error) {
	list, err := r.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: recordLabel + "=true"})
	if err != nil {
		return nil, fmt.Errorf("listing manifest records: %w", err)
	}
	out := make(map[string]*record, len(list.Items))
	for i := range list.Items {
		cm := &list.Items[i]
		file := cm.Annotations[fileAnnotation]
		if file == "" {
			continue
		}
		objects, err := decodeObjects(cm.Data[objectsKey])
		if err != nil {
			klog.ErrorS(err, "Ignoring a damaged manifest record", "record", cm.Name, "file", file)
			continue
		}
		out[file] = &record{cm: cm, sha: cm.Annotations[shaAnnotation], objects: objects}
	}
	return out, nil
}

// write stores the file's record under name; sha is left out while no content has applied
// completely.
func (r records) write(ctx context.Context, name, file, sha string, objects []objectRef) (*corev1.ConfigMap, error) {
	annotations := map[string]string{fileAnnotation: file}
	if sha != "" {
		annotations[shaAnnotation] = sha
	}
	cfg := applycorev1.ConfigMap(name, metav1.NamespaceSystem).
		WithLabels(recordLabels).
		WithAnnotations(annotations).
		WithData(map[string]string{objectsKey: encodeObjects(objects)})
	cm, err := r.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Apply(ctx, cfg, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return nil, fmt.Errorf("writing record %s: %w", name, err)
	}
	return cm, nil
}

// ensure returns the file's record, creating an empty one if there is none, so that a file
// that never applied has an object to report its events on.
func (r records) ensure(ctx context.Context, file string) (*corev1.ConfigMap, error) {
	cms := r.client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:        RecordName(file),
			Namespace:   metav1.NamespaceSystem,
			Labels:      recordLabels,
			Annotations: map[string]string{fileAnnotation: file},
		},
		Data: map[string]string{objectsKey: encodeObjects(nil)},
	}
	created, err := cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		created, err = cms.Get(ctx, cm.Name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("creating record %s: %w", cm.Name, err)
	}
	return created, nil
}

func (r records) delete(ctx context.Context, name string) error {
	err := r.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting record %s: %w", name, err)
	}
	return nil
}

func sortedFiles(recs map[string]*record) []string {
	files := make([]string, 0, len(recs))
	for f := range recs {
		files = append(files, f)
	}
	sort.Strings(files)
	return files
}
