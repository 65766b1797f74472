package deploy

import (
	"strings"
	"testing"
)

func TestParseManifest(t *testing.T) {
	content := `# leading comment, no document
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: a
  namespace: kube-system
---
# a document of comments only
---

--- # separator with a comment
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b}
  data: {replicas: "3"}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: c}
  spec: {replicas: 3}
---
{}
---
null
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: d
`
	objs, err := parseManifest([]byte(content))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, refOf(o).String())
	}
	want := "ServiceAccount kube-system/a,ConfigMap b,Deployment c,ClusterRole d"
	if strings.Join(got, ",") != want {
		t.Fatalf("objects = %q, want %q", strings.Join(got, ","), want)
	}
	// Integers must stay integers: a float would not round-trip large values.
	if r, ok := objs[2].Object["spec"].(map[string]any)["replicas"].(int64); !ok || r != 3 {
		t.Fatalf("replicas = %#v, want int64 3", objs[2].Object["spec"])
	}
}

func TestParseManifestEmpty(t *testing.T) {
	for _, content := range []string{"", "\n", "# nothing\n", "---\n---\n", "---\n# x\n---\n\n"} {
		objs, err := parseManifest([]byte(content))
		if err != nil || len(objs) != 0 {
			t.Errorf("parseManifest(%q) = %d objects, %v; want none", content, len(objs), err)
		}
	}
}

func TestParseManifestCRLF(t *testing.T) {
	objs, err := parseManifest([]byte("apiVersion: v1\r\nkind: Namespace\r\nmetadata:\r\n  name: x\r\n---\r\napiVersion: v1\r\nkind: Namespace\r\nmetadata:\r\n  name: z\r\n"))
	if err != nil || len(objs) != 2 || objs[1].GetName() != "z" {
		t.Fatalf("got %d objects, %v", len(objs), err)
	}
}

func TestParseManifestErrors(t *testing.T) {
	good := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ok\n"
	for _, tc := range []struct {
		name, content, want string
	}{
		{"broken YAML", good + "---\n# c\n---\n" + good + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [a\n", "document 3 (line 13): yaml: line 5"},
		{"mapping error", good + "---\napiVersion: v1\n kind: x: y\n", "document 2 (line 6)"},
		{"scalar", good + "---\njust text\n", "document 2 (line 6): not an object"},
		{"no kind", "---\napiVersion: v1\nmetadata:\n  name: x\n", "document 1 (line 2): object has no apiVersion or kind"},
		{"no name", good + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: x-\n", "document 2 (line 6): ConfigMap has no metadata.name"},
		{"bad apiVersion", "apiVersion: a/b/c\nkind: X\nmetadata: {name: x}\n", "document 1 (line 1): X:"},
		{"list item", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n- {apiVersion: v1, kind: Secret}\n", "document 1 (line 1), item 2: Secret has no metadata.name"},
		{"list scalar item", "apiVersion: v1\nkind: List\nitems: [3]\n", "document 1 (line 1), item 1: not an object"},
	} {
		_, err := parseManifest([]byte(tc.content))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one starting %q", tc.name, err, tc.want)
		}
	}
}

func TestSplitDocumentsKeepsSeparatorLikeContent(t *testing.T) {
	// "----" and "---x" are not separators; an indented "---" is block content.
	docs := splitDocuments([]byte("a: |\n  ---\n  b\nc: ----\n"))
	if len(docs) != 1 || docs[0].line != 1 {
		t.Fatalf("docs = %+v, want one starting at line 1", docs)
	}
}
