package deploy

import (
	"reflect"
	"testing"
)

var (
	sa     = objectRef{APIVersion: "v1", Kind: "ServiceAccount", Namespace: "kube-system", Name: "coredns"}
	role   = objectRef{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "system:coredns"}
	deploy = objectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "kube-system", Name: "coredns"}
	// deployOld is deploy written in an older API version: the same object.
	deployOld = objectRef{APIVersion: "apps/v1beta2", Kind: "Deployment", Namespace: "kube-system", Name: "coredns"}
	cm        = objectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "coredns"}
)

func TestObjectsRoundTrip(t *testing.T) {
	refs := []objectRef{sa, role, deploy}
	s := encodeObjects(refs)
	want := `[
{"apiVersion":"v1","kind":"ServiceAccount","namespace":"kube-system","name":"coredns"},
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","name":"system:coredns"},
{"apiVersion":"apps/v1","kind":"Deployment","namespace":"kube-system","name":"coredns"}
]`
	if s != want {
		t.Fatalf("encoded:\n%s\nwant:\n%s", s, want)
	}
	got, err := decodeObjects(s)
	if err != nil || !reflect.DeepEqual(got, refs) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if s := encodeObjects(nil); s != "[]" {
		t.Fatalf("empty list encoded as %q", s)
	}
	if got, err := decodeObjects("[]"); err != nil || len(got) != 0 {
		t.Fatalf("empty list decoded as %+v, %v", got, err)
	}
}

func TestDecodeObjectsRejectsDamage(t *testing.T) {
	for _, s := range []string{"", "nope", `{"kind":"X"}`, `[{"apiVersion":"v1","kind":"ConfigMap"}]`, `[{"kind":"ConfigMap","name":"x"}]`} {
		if _, err := decodeObjects(s); err == nil {
			t.Errorf("decodeObjects(%q) succeeded", s)
		}
	}
}

func TestSubtractAndUnion(t *testing.T) {
	if got := subtract([]objectRef{sa, role, deploy, cm}, []objectRef{role, deployOld}); !reflect.DeepEqual(got, []objectRef{sa, cm}) {
		t.Errorf("subtract = %+v; a changed apiVersion must not make an object disappear", got)
	}
	if got := subtract(nil, []objectRef{sa}); got != nil {
		t.Errorf("subtract from nothing = %+v", got)
	}
	// The other namespace is another object.
	other := cm
	other.Namespace = "kube-system"
	if got := subtract([]objectRef{cm}, []objectRef{other}); !reflect.DeepEqual(got, []objectRef{cm}) {
		t.Errorf("subtract across namespaces = %+v", got)
	}
	if got := union([]objectRef{deploy, sa, deploy}, []objectRef{deployOld, role, sa}); !reflect.DeepEqual(got, []objectRef{deploy, sa, role}) {
		t.Errorf("union = %+v", got)
	}
}
