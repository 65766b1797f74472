package etcd

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RemoveMembersOfDeletedNodes removes a server's etcd member when its Node is deleted, as k3s
// does: deleting the Node is how a user says the machine is gone for good, and a member that
// never comes back counts against the quorum. Every server runs this; a member already removed
// by another is no error. A server's own member is left alone: it is in use right here.
func RemoveMembersOfDeletedNodes(ctx context.Context, client kubernetes.Interface, cli *clientv3.Client, self string) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes().Informer()
	if _, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		node, ok := obj.(*corev1.Node)
		if !ok || node.Name == self {
			return
		}
		if err := removeByName(ctx, cli, node.Name); err != nil {
			klog.ErrorS(err, "Removing the etcd member of a deleted node", "node", node.Name)
		}
	}}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	return nil
}

func removeByName(ctx context.Context, cli *clientv3.Client, name string) error {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("listing the etcd members: %w", err)
	}
	for _, m := range list.Members {
		if m.Name == name {
			if err := Remove(ctx, cli, m.ID); err != nil {
				return err
			}
			klog.InfoS("Removed the etcd member of a deleted node", "node", name, "id", fmt.Sprintf("%x", m.ID))
		}
	}
	return nil
}
