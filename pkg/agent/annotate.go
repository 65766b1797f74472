package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// StorageDirAnnotation tells the local-path provisioner where this node keeps volumes. Several
// nodes may share a machine, each with its own data dir, so the path cannot be a cluster-wide
// setting.
const StorageDirAnnotation = "ketch.io/storage-dir"

// annotateNode sets the node's ketch annotations once the kubelet has registered it, retrying
// until it succeeds or ctx ends.
func annotateNode(ctx context.Context, client kubernetes.Interface, nodeName string, annotations map[string]string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return fmt.Errorf("annotating node %s: %w", nodeName, err)
	}
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Nodes().Patch(ctx, nodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "ketch"})
		if err != nil {
			klog.V(2).InfoS("Annotating node", "node", nodeName, "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("annotating node %s: %w", nodeName, context.Cause(ctx))
	}
	return nil
}
