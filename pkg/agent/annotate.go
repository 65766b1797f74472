package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// StorageDirAnnotation tells the local-path provisioner where this node keeps volumes. Several
// nodes may share a machine, each with its own data dir, so the path cannot be a cluster-wide
// setting.
const StorageDirAnnotation = "ketch.io/storage-dir"

// annotateNode sets the node's ketch annotations once the kubelet has registered it, retrying
// until it succeeds or ctx ends. It runs beside the node's start-up, never holding it up.
func annotateNode(ctx context.Context, kubeconfig, nodeName string, annotations map[string]string) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		klog.ErrorS(err, "Annotating node: reading kubeconfig", "kubeconfig", kubeconfig)
		return
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		klog.ErrorS(err, "Annotating node: building client")
		return
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		klog.ErrorS(err, "Annotating node: encoding patch")
		return
	}
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Nodes().Patch(ctx, nodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "ketch"})
		if apierrors.IsNotFound(err) {
			return false, nil // not registered yet
		}
		if err != nil {
			klog.V(2).InfoS("Annotating node", "node", nodeName, "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil && ctx.Err() == nil {
		klog.ErrorS(fmt.Errorf("annotating node %s: %w", nodeName, err), "Node annotations not set")
	}
}
