package localpath

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/ketch-k8s/ketch/manifests"
	"github.com/ketch-k8s/ketch/pkg/addons/role"
)

// TestManifest checks manifests/local-storage.yaml, rendered, against this package: strict
// decoding, the names the code relies on, arguments the provisioner accepts, a pod the API
// server accepts.
func TestManifest(t *testing.T) {
	const image = "localhost/ketch/addons:0123abcd"
	rendered, err := manifests.Render(manifests.Values{AddonsImage: image, ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local"})
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := rendered["local-storage.yaml"]
	if !ok {
		t.Fatal("no local-storage.yaml among the bundled manifests")
	}
	decoder := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Yaml: true, Strict: true})
	var (
		class    *storagev1.StorageClass
		deploy   *appsv1.Deployment
		rbacRole *rbacv1.Role
	)
	for i, doc := range bytes.Split(raw, []byte("\n---\n")) {
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		switch o := obj.(type) {
		case *storagev1.StorageClass:
			class = o
		case *appsv1.Deployment:
			deploy = o
		case *rbacv1.Role:
			rbacRole = o
		}
	}
	if class == nil || deploy == nil || rbacRole == nil {
		t.Fatalf("StorageClass %v, Deployment %v, Role %v: want all three", class != nil, deploy != nil, rbacRole != nil)
	}

	if class.Name != "local-path" || class.Provisioner != defaultProvisionerName ||
		class.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" ||
		class.VolumeBindingMode == nil || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer ||
		class.ReclaimPolicy == nil || *class.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("StorageClass %+v", class)
	}

	c := deploy.Spec.Template.Spec.Containers[0]
	if c.Image != image || len(c.Args) == 0 || c.Args[0] != "local-path-provisioner" {
		t.Fatalf("container image %q, args %q", c.Image, c.Args)
	}
	opts, err := parseProvisionerFlags(c.Args[1:])
	if err != nil {
		t.Fatalf("the provisioner refuses the manifest's arguments: %v", err)
	}
	if opts.helperImage != image || opts.namespace != rbacRole.Namespace || opts.provisionerName != class.Provisioner {
		t.Errorf("provisioner options %+v do not match the manifest", opts)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8080 || !strings.HasSuffix(opts.healthAddr, ":8080") {
		t.Errorf("ports %+v, health address %q", c.Ports, opts.healthAddr)
	}
	pod := &corev1.Pod{ObjectMeta: deploy.Spec.Template.ObjectMeta, Spec: deploy.Spec.Template.Spec}
	pod.Name, pod.Namespace = deploy.Name+"-0", deploy.Namespace
	validatePod(t, pod)

	if rbacRole.Namespace != role.LeaseNamespace {
		t.Errorf("Role in %s, lease in %s", rbacRole.Namespace, role.LeaseNamespace)
	}
	granted := func(group, resource, verb string) bool {
		for _, r := range rbacRole.Rules {
			if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
				return true
			}
		}
		return false
	}
	for _, verb := range []string{"create", "get", "delete"} {
		if !granted("", "pods", verb) {
			t.Errorf("the Role does not grant %s on pods", verb)
		}
	}
	for _, verb := range []string{"create", "get", "update"} {
		if !granted("coordination.k8s.io", "leases", verb) {
			t.Errorf("the Role does not grant %s on leases", verb)
		}
	}
}
