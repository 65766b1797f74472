package etcd

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RemoveMembersOfDeletedNodes removes a server's etcd member when its Node is deleted, as k3s
// does: deleting the Node is how a user says the machine is gone for good, and a member that
// never comes back counts against the quorum. Every server runs this; a member already removed
// by another is no error. A server's own member is left alone: it is in use right here. etcd
// may refuse the removal for a while, so it is tried until it is done or the server stops.
func RemoveMembersOfDeletedNodes(ctx context.Context, client kubernetes.Interface, cli *clientv3.Client, self string) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes().Informer()
	var removing sync.WaitGroup
	if _, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		node, ok := obj.(*corev1.Node)
		if !ok || node.Name == self {
			return
		}
		removing.Go(func() {
			if _, err := removeMembersNamed(ctx, cli, node.Name); err != nil {
				klog.ErrorS(err, "Removing the etcd member of a deleted node", "node", node.Name)
			}
		})
	}}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	removing.Wait()
	return nil
}

// removeBackoff paces removeMembersNamed's tries: etcd refuses a removal until its leader has
// been connected to every peer for 5 s (its health interval), which a Node deleted right after
// its server joined, or after any peer reconnected, runs into. Its DelayFunc stays at Cap once
// it gets there (wait.ExponentialBackoff would give up instead).
var removeBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Cap: 30 * time.Second, Steps: math.MaxInt32}

// removeMembersNamed removes the etcd members called name, trying again while etcd refuses or
// cannot be reached, until they are gone or ctx ends, and returns how many tries failed. The
// members are looked up by name once: a server that joins again under the same name while this
// still tries is a new member, which must not be removed.
func removeMembersNamed(ctx context.Context, cli *clientv3.Client, name string) (failed int, err error) {
	var ids []uint64
	listed := false
	var last error
	err = removeBackoff.DelayFunc().Until(ctx, true, false, func(ctx context.Context) (bool, error) {
		if !listed {
			list, err := cli.MemberList(ctx)
			if err != nil {
				last = fmt.Errorf("listing the etcd members: %w", err)
				failed++
				return false, nil
			}
			for _, m := range list.Members {
				if m.Name == name {
					ids = append(ids, m.ID)
				}
			}
			listed = true
		}
		for len(ids) > 0 {
			if err := Remove(ctx, cli, ids[0]); err != nil {
				last = err
				failed++
				klog.V(2).InfoS("etcd refused to remove the member of a deleted node; trying again", "node", name, "err", err)
				return false, nil
			}
			klog.InfoS("Removed the etcd member of a deleted node", "node", name, "id", fmt.Sprintf("%x", ids[0]))
			ids = ids[1:]
		}
		return true, nil
	})
	if err != nil && last != nil {
		err = fmt.Errorf("%w (last try: %w)", err, last)
	}
	return failed, err
}
