package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/kubernetes/pkg/volume/csi"
	volumetesting "k8s.io/kubernetes/pkg/volume/testing"
)

// TestCSINodeInfoStaysTheKubelets runs upstream's CSI volume plugin as one ketch server process
// does: the kubelet inits it for its node, then kube-controller-manager inits a second instance
// of it, with no node name, for a volume controller (what a server that becomes the leader after
// its kubelet started does). The kubelet's CSI driver registration must still act on its own
// node through its own client; unpatched, kube-controller-manager's Init took the package's node
// information over (build/patches/kubernetes).
func TestCSINodeInfoStaysTheKubelets(t *testing.T) {
	const node = "n1"
	kubeletClient := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}})
	kcmClient := fake.NewClientset()

	// Each returns once the plugin's Init is done; the kubelet's once its CSINode is initialized.
	volumetesting.NewFakeKubeletVolumeHostWithCSINodeName(t, t.TempDir(), kubeletClient, csi.ProbeVolumePlugins(), node, nil, nil)
	if _, err := kubeletClient.StorageV1().CSINodes().Get(t.Context(), node, metav1.GetOptions{}); err != nil {
		t.Fatalf("the kubelet's Init did not initialize its CSINode: %v", err)
	}
	volumetesting.NewFakeAttachDetachVolumeHostWithCSINodeName(t, t.TempDir(), kcmClient, csi.ProbeVolumePlugins(), "", nil, nil)

	kubeletClient.ClearActions()
	kcmClient.ClearActions()
	// What the kubelet's plugin watcher calls when a CSI driver's registration socket goes away.
	csi.PluginHandler.DeRegisterPlugin("csi.example.com", "/nonexistent/csi.sock")

	if acts := kcmClient.Actions(); len(acts) > 0 {
		t.Errorf("the kubelet's CSI driver deregistration went through kube-controller-manager's client (its Init took the plugin's node information over): %v", describe(acts))
	}
	var gotCSINode bool
	for _, a := range kubeletClient.Actions() {
		if g, ok := a.(k8stesting.GetAction); ok && g.GetResource().Resource == "csinodes" && g.GetName() == node {
			gotCSINode = true
		}
	}
	if !gotCSINode {
		t.Errorf("the kubelet's CSI driver deregistration did not read CSINode %s through the kubelet's client; its actions: %v", node, describe(kubeletClient.Actions()))
	}
}

func describe(acts []k8stesting.Action) []string {
	var out []string
	for _, a := range acts {
		s := a.GetVerb() + " " + a.GetResource().Resource
		if g, ok := a.(k8stesting.GetAction); ok {
			s += " " + g.GetName()
		}
		out = append(out, s)
	}
	return out
}
