package localpath

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	volumeutil "k8s.io/component-helpers/storage/volume"
	"k8s.io/utils/ptr"
)

const testUID = "0f8e3c1a-5b6d-4e7f-8a9b-0c1d2e3f4a5b"

// testClaim is a claim as the PV controller hands it over once the scheduler has picked node-1.
func testClaim(mod ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: "data", Namespace: "app", UID: testUID,
			Annotations: map[string]string{
				volumeutil.AnnStorageProvisioner: defaultProvisionerName,
				volumeutil.AnnSelectedNode:       "node-1",
			},
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To("local-path"),
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	for _, m := range mod {
		m(c)
	}
	return c
}

func testClass(mod ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	c := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: "local-path"},
		Provisioner:       defaultProvisionerName,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
	for _, m := range mod {
		m(c)
	}
	return c
}

func testNode(annotations map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        "node-1",
		Labels:      map[string]string{corev1.LabelHostname: "node-1"},
		Annotations: annotations,
	}}
}

func TestClaimIsOurs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		claim *corev1.PersistentVolumeClaim
		want  bool
	}{
		{"pending, handed over", testClaim(), true},
		{"beta annotation", testClaim(func(c *corev1.PersistentVolumeClaim) {
			delete(c.Annotations, volumeutil.AnnStorageProvisioner)
			c.Annotations[volumeutil.AnnBetaStorageProvisioner] = defaultProvisionerName
		}), true},
		{"no node chosen yet is still ours", testClaim(func(c *corev1.PersistentVolumeClaim) {
			delete(c.Annotations, volumeutil.AnnSelectedNode)
		}), true},
		{"another provisioner", testClaim(func(c *corev1.PersistentVolumeClaim) {
			c.Annotations[volumeutil.AnnStorageProvisioner] = "ebs.csi.aws.com"
		}), false},
		{"not handed over", testClaim(func(c *corev1.PersistentVolumeClaim) {
			delete(c.Annotations, volumeutil.AnnStorageProvisioner)
		}), false},
		{"bound", testClaim(func(c *corev1.PersistentVolumeClaim) { c.Status.Phase = corev1.ClaimBound }), false},
		{"volume named", testClaim(func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "pvc-x" }), false},
		{"being deleted", testClaim(func(c *corev1.PersistentVolumeClaim) { c.DeletionTimestamp = &metav1.Time{} }), false},
	} {
		if got := claimIsOurs(tc.claim, defaultProvisionerName); got != tc.want {
			t.Errorf("%s: claimIsOurs = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPlanClaim(t *testing.T) {
	for _, tc := range []struct {
		name     string
		claim    *corev1.PersistentVolumeClaim
		class    *storagev1.StorageClass
		wantNode string
		wantErr  string // a substring; "" for none
	}{
		{name: "ready", claim: testClaim(), class: testClass(), wantNode: "node-1"},
		{name: "ReadWriteOncePod", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
		}), class: testClass(), wantNode: "node-1"},
		{name: "explicit Filesystem", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
		}), class: testClass(), wantNode: "node-1"},
		{name: "no node yet", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			delete(c.Annotations, volumeutil.AnnSelectedNode)
		}), class: testClass()},
		{name: "class of another provisioner", claim: testClaim(), class: testClass(func(c *storagev1.StorageClass) {
			c.Provisioner = "other"
		})},
		{name: "ReadWriteMany", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteMany}
		}), class: testClass(), wantErr: "access mode ReadWriteMany is not supported"},
		{name: "ReadOnlyMany", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany}
		}), class: testClass(), wantErr: "access mode ReadOnlyMany is not supported"},
		{name: "no access mode", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = nil
		}), class: testClass(), wantErr: "no access mode"},
		{name: "block", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
		}), class: testClass(), wantErr: "volumeMode Block"},
		{name: "selector", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Selector = &metav1.LabelSelector{}
		}), class: testClass(), wantErr: "selector"},
		{name: "clone", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "other"}
		}), class: testClass(), wantErr: "cannot be cloned"},
		{name: "no storage request", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Resources.Requests = nil
		}), class: testClass(), wantErr: "requests no storage"},
		{name: "mount options", claim: testClaim(), class: testClass(func(c *storagev1.StorageClass) {
			c.MountOptions = []string{"noatime"}
		}), wantErr: "mountOptions"},
		{name: "immediate binding, no node", claim: testClaim(func(c *corev1.PersistentVolumeClaim) {
			delete(c.Annotations, volumeutil.AnnSelectedNode)
		}), class: testClass(func(c *storagev1.StorageClass) {
			c.VolumeBindingMode = ptr.To(storagev1.VolumeBindingImmediate)
		}), wantErr: "WaitForFirstConsumer"},
		{name: "immediate binding, node given anyway", claim: testClaim(), class: testClass(func(c *storagev1.StorageClass) {
			c.VolumeBindingMode = nil
		}), wantNode: "node-1"},
	} {
		node, err := planClaim(tc.claim, tc.class, defaultProvisionerName)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.wantErr)
		case node != tc.wantNode:
			t.Errorf("%s: node %q, want %q", tc.name, node, tc.wantNode)
		}
	}
}

func TestNodeStorageDir(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        string
		wantErr     string
	}{
		{"published", map[string]string{storageDirAnnotation: "/var/lib/ketch/storage"}, "/var/lib/ketch/storage", ""},
		{"missing", nil, "", "has no ketch.io/storage-dir annotation"},
		{"empty", map[string]string{storageDirAnnotation: ""}, "", "not a clean absolute path"},
		{"relative", map[string]string{storageDirAnnotation: "var/lib/storage"}, "", "not a clean absolute path"},
		{"unclean", map[string]string{storageDirAnnotation: "/var/lib/../../etc"}, "", "not a clean absolute path"},
		{"trailing slash", map[string]string{storageDirAnnotation: "/var/lib/storage/"}, "", "not a clean absolute path"},
		{"root", map[string]string{storageDirAnnotation: "/"}, "", "not a clean absolute path"},
	} {
		got, err := nodeStorageDir(testNode(tc.annotations))
		if tc.wantErr == "" && (err != nil || got != tc.want) {
			t.Errorf("%s: nodeStorageDir = %q, %v; want %q", tc.name, got, err, tc.want)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestDirName(t *testing.T) {
	if got, want := dirName(testClaim()), "pvc-"+testUID+"_app_data"; got != want {
		t.Errorf("dirName = %q, want %q", got, want)
	}
	long := testClaim(func(c *corev1.PersistentVolumeClaim) { c.Name = strings.Repeat("a", 253) })
	if got := dirName(long); len(got) != maxDirName || !strings.HasPrefix(got, "pvc-"+testUID+"_app_aaa") {
		t.Errorf("dirName of a 253-character claim name = %q (%d bytes), want its first %d bytes", got, len(got), maxDirName)
	}
}

func TestNewVolume(t *testing.T) {
	claim := testClaim()
	pv, err := newVolume(claim, testClass(), testNode(nil), "/var/lib/ketch/storage", defaultProvisionerName)
	if err != nil {
		t.Fatal(err)
	}
	dir := "/var/lib/ketch/storage/pvc-" + testUID + "_app_data"
	if pv.Name != "pvc-"+testUID {
		t.Errorf("name %q", pv.Name)
	}
	wantAnn := map[string]string{
		"pv.kubernetes.io/provisioned-by": defaultProvisionerName,
		"ketch.io/local-path-node":        "node-1",
		"ketch.io/local-path-dir":         dir,
	}
	for k, v := range wantAnn {
		if pv.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, pv.Annotations[k], v)
		}
	}
	s := pv.Spec
	if hp := s.HostPath; hp == nil || hp.Path != dir || hp.Type == nil || *hp.Type != corev1.HostPathDirectoryOrCreate {
		t.Errorf("hostPath %+v, want %s DirectoryOrCreate", hp, dir)
	}
	if q := s.Capacity[corev1.ResourceStorage]; q.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("capacity %s, want 1Gi", q.String())
	}
	if len(s.AccessModes) != 1 || s.AccessModes[0] != corev1.ReadWriteOnce {
		t.Errorf("access modes %v", s.AccessModes)
	}
	if s.StorageClassName != "local-path" || s.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("class %q, reclaim policy %q", s.StorageClassName, s.PersistentVolumeReclaimPolicy)
	}
	if r := s.ClaimRef; r == nil || r.Namespace != "app" || r.Name != "data" || r.UID != types.UID(testUID) || r.Kind != "PersistentVolumeClaim" {
		t.Errorf("claimRef %+v", r)
	}
	terms := s.NodeAffinity.Required.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 1 {
		t.Fatalf("node affinity %+v", terms)
	}
	if e := terms[0].MatchExpressions[0]; e.Key != corev1.LabelHostname || e.Operator != corev1.NodeSelectorOpIn || len(e.Values) != 1 || e.Values[0] != "node-1" {
		t.Errorf("node affinity %+v", e)
	}
	// The PV controller binds the pair only if the volume satisfies the claim.
	if !volumeutil.CheckAccessModes(claim, pv) || volumeutil.CheckVolumeModeMismatches(&claim.Spec, &pv.Spec) {
		t.Error("the volume does not satisfy its claim")
	}
	if err := volumeutil.CheckNodeAffinity(pv, testNode(nil).Labels); err != nil {
		t.Errorf("the volume does not fit its node: %v", err)
	}
	validateVolume(t, pv)

	retain, err := newVolume(claim, testClass(func(c *storagev1.StorageClass) {
		c.ReclaimPolicy = ptr.To(corev1.PersistentVolumeReclaimRetain)
	}), testNode(nil), "/s", defaultProvisionerName)
	if err != nil || retain.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("Retain class: %v, reclaim policy %q", err, retain.Spec.PersistentVolumeReclaimPolicy)
	}
	unlabelled := testNode(nil)
	unlabelled.Labels = nil
	if _, err := newVolume(claim, testClass(), unlabelled, "/s", defaultProvisionerName); err == nil || !strings.Contains(err.Error(), corev1.LabelHostname) {
		t.Errorf("node without hostname label: error %v", err)
	}
	long := testClaim(func(c *corev1.PersistentVolumeClaim) { c.Name = strings.Repeat("a", 253) })
	pv, err = newVolume(long, testClass(), testNode(nil), "/var/lib/ketch/storage", defaultProvisionerName)
	if err != nil {
		t.Fatal(err)
	}
	validateVolume(t, pv)
}
