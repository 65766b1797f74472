package deploy

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// objectRef names an object a manifest created, as its record lists it.
type objectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// objectKey identifies an object regardless of the API version it was written in: a manifest
// moving a Deployment from apps/v1beta2 to apps/v1 still holds the same object.
type objectKey struct {
	group, kind, namespace, name string
}

func refOf(obj *unstructured.Unstructured) objectRef {
	return objectRef{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

func (r objectRef) key() objectKey {
	gv, _ := schema.ParseGroupVersion(r.APIVersion)
	return objectKey{group: gv.Group, kind: r.Kind, namespace: r.Namespace, name: r.Name}
}

func (r objectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// encodeObjects is a record's "objects": a JSON array with one object per line, so that
// `kubectl get -o yaml` shows it readably.
func encodeObjects(refs []objectRef) string {
	if len(refs) == 0 {
		return "[]"
	}
	lines := make([]string, len(refs))
	for i, r := range refs {
		b, _ := json.Marshal(r) // only strings: cannot fail
		lines[i] = string(b)
	}
	return "[\n" + strings.Join(lines, ",\n") + "\n]"
}

func decodeObjects(s string) ([]objectRef, error) {
	var refs []objectRef
	if err := json.Unmarshal([]byte(s), &refs); err != nil {
		return nil, fmt.Errorf("decoding the object list: %w", err)
	}
	for _, r := range refs {
		if r.APIVersion == "" || r.Kind == "" || r.Name == "" {
			return nil, fmt.Errorf("object list entry %+v lacks apiVersion, kind or name", r)
		}
	}
	return refs, nil
}

// subtract is the objects of a that b does not hold, in a's order.
func subtract(a, b []objectRef) []objectRef {
	in := make(map[objectKey]bool, len(b))
	for _, r := range b {
		in[r.key()] = true
	}
	var out []objectRef
	for _, r := range a {
		if !in[r.key()] {
			out = append(out, r)
		}
	}
	return out
}

// union is a's objects, without repeats, then those only b holds; where both hold an object,
// a's entry (the newer one) wins.
func union(a, b []objectRef) []objectRef {
	seen := make(map[objectKey]bool, len(a)+len(b))
	var out []objectRef
	for _, list := range [][]objectRef{a, b} {
		for _, r := range list {
			if k := r.key(); !seen[k] {
				seen[k] = true
				out = append(out, r)
			}
		}
	}
	return out
}
