package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// document is one YAML document of a manifest. Its number counts only documents with content,
// and line is the file line its text starts on (YAML errors count lines from there), so that an
// error points at what the user sees.
type document struct {
	number, line int
	data         []byte
}

// splitDocuments cuts a manifest at its "---" lines (which may carry a comment), dropping
// documents that are blank or only comments, as kubectl does.
func splitDocuments(content []byte) []document {
	var docs []document
	var cur document
	var hasContent bool
	flush := func() {
		if hasContent {
			cur.number = len(docs) + 1
			docs = append(docs, cur)
		}
	}
	for i, line := range bytes.SplitAfter(content, []byte("\n")) {
		text := strings.TrimRight(string(line), "\r\n")
		if rest, ok := strings.CutPrefix(text, "---"); ok && (strings.TrimSpace(rest) == "" || strings.HasPrefix(strings.TrimSpace(rest), "#")) {
			flush()
			cur, hasContent = document{line: i + 2}, false
			continue
		}
		if cur.line == 0 {
			cur.line = i + 1
		}
		if t := strings.TrimSpace(text); t != "" && !strings.HasPrefix(t, "#") {
			hasContent = true
		}
		cur.data = append(cur.data, line...)
	}
	flush()
	return docs
}

// parseManifest returns a manifest's objects in file order, a List standing for its items. It
// fails on the first document that is not YAML or not an object with apiVersion, kind and name.
func parseManifest(content []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, doc := range splitDocuments(content) {
		where := fmt.Sprintf("document %d (line %d)", doc.number, doc.line)
		js, err := yaml.YAMLToJSON(doc.data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		var m map[string]any
		if err := utiljson.Unmarshal(js, &m); err != nil {
			return nil, fmt.Errorf("%s: not an object: %w", where, err)
		}
		if len(m) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: m}
		if !isList(obj) {
			if err := validate(obj); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			objs = append(objs, obj)
			continue
		}
		for i, item := range obj.Object["items"].([]any) {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s, item %d: not an object", where, i+1)
			}
			obj := &unstructured.Unstructured{Object: m}
			if err := validate(obj); err != nil {
				return nil, fmt.Errorf("%s, item %d: %w", where, i+1, err)
			}
			objs = append(objs, obj)
		}
	}
	return objs, nil
}

// isList is whether a document is a list of objects, as `kubectl get -o yaml` writes: kind List,
// or any kind ending in List, with an items array.
func isList(obj *unstructured.Unstructured) bool {
	_, ok := obj.Object["items"].([]any)
	return ok && strings.HasSuffix(obj.GetKind(), "List")
}

func validate(obj *unstructured.Unstructured) error {
	if obj.GetAPIVersion() == "" || obj.GetKind() == "" {
		return errors.New("object has no apiVersion or kind")
	}
	if _, err := schema.ParseGroupVersion(obj.GetAPIVersion()); err != nil {
		return fmt.Errorf("%s: %w", obj.GetKind(), err)
	}
	if obj.GetName() == "" {
		return fmt.Errorf("%s has no metadata.name", obj.GetKind())
	}
	return nil
}
