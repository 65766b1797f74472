package servicelb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

const (
	// syncKey is the only work item: every pass re-evaluates every Service, which keeps the
	// outcome of a clash independent of the order in which changes arrive.
	syncKey = "all"
	// syncTimeout bounds one pass; a pass running for twice as long counts as stuck.
	syncTimeout = time.Minute

	reasonPortConflict = "PortConflict"
	reasonEnsured      = "EnsuredLoadBalancer"
)

// controller keeps status.loadBalancer.ingress of the LoadBalancer Services equal to assign's
// verdict on the current Services and Nodes.
type controller struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder

	// reported is the conflict message last reported per Service, so that a clash is reported
	// when it appears or changes rather than on every pass. Each pass replaces it, so deleted
	// Services drop out; a new leader starts empty and reports the current clashes once more.
	// Only the worker touches it.
	reported map[types.NamespacedName]string

	// busySince is when the running pass started (UnixNano), 0 between passes.
	busySince atomic.Int64
}

// newController registers the controller's handlers with factory's Service and Node informers;
// the caller starts the factory.
func newController(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*controller, error) {
	svcs, nodes := factory.Core().V1().Services(), factory.Core().V1().Nodes()
	c := &controller{
		client:   client,
		services: svcs.Lister(),
		nodes:    nodes.Lister(),
		synced:   []cache.InformerSynced{svcs.Informer().HasSynced, nodes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "servicelb"}),
		recorder: recorder,
	}
	enqueue := func(any) { c.queue.Add(syncKey) }
	handlers := []struct {
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandlerFuncs
	}{
		{svcs.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc: enqueue, DeleteFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) },
		}},
		{nodes.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc: enqueue, DeleteFunc: enqueue,
			UpdateFunc: func(o, n any) {
				if nodeChanged(o, n) {
					enqueue(n)
				}
			},
		}},
	}
	for _, h := range handlers {
		if err := h.informer.SetTransform(trim); err != nil {
			return nil, fmt.Errorf("servicelb informer: %w", err)
		}
		if _, err := h.informer.AddEventHandler(h.handler); err != nil {
			return nil, fmt.Errorf("servicelb informer: %w", err)
		}
	}
	return c, nil
}

// trim drops what the controller never reads from cached objects: managed fields and a Node's
// image list are most of their size, and the pod has 64 MiB.
func trim(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	if n, ok := obj.(*v1.Node); ok {
		n.Status.Images = nil
	}
	return obj, nil
}

// nodeChanged reports whether a Node update changes what assign reads, which skips the
// heartbeats that make up most Node updates.
func nodeChanged(oldObj, newObj any) bool {
	o, okOld := oldObj.(*v1.Node)
	n, okNew := newObj.(*v1.Node)
	if !okOld || !okNew {
		return true
	}
	return o.Labels[labelEnableLB] != n.Labels[labelEnableLB] || o.Labels[labelLBPool] != n.Labels[labelLBPool] ||
		ready(o) != ready(n) || !slices.Equal(o.Status.Addresses, n.Status.Addresses)
}

// check fails unless the caches synced and no pass is stuck. A replica waiting for the lease
// passes: restarting it would not help.
func (c *controller) check() error {
	for _, synced := range c.synced {
		if !synced() {
			return errors.New("caches not synced")
		}
	}
	if since := c.busySince.Load(); since != 0 && time.Since(time.Unix(0, since)) >= 2*syncTimeout {
		return errors.New("update stuck")
	}
	return nil
}

// run works the queue until ctx ends; the caches must have synced.
func (c *controller) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, c.queue.ShutDown)
	defer stop()
	c.queue.Add(syncKey)
	for c.processNext(ctx) {
	}
}

func (c *controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	err := c.sync(ctx)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		if c.queue.NumRequeues(key) == 0 {
			klog.InfoS("Service load balancer update failed; retrying", "err", err)
		} else {
			klog.V(2).InfoS("Service load balancer update failed; retrying", "err", err, "retries", c.queue.NumRequeues(key))
		}
		c.queue.AddRateLimited(key)
	default:
		if c.queue.NumRequeues(key) > 0 {
			klog.InfoS("Service load balancer updated again")
		}
		c.queue.Forget(key)
	}
	return true
}

// sync is one pass: it decides every handled Service's ingress, reports new clashes and writes
// the statuses that differ.
func (c *controller) sync(ctx context.Context) error {
	c.busySince.Store(time.Now().UnixNano())
	defer c.busySince.Store(0)
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()

	services, err := c.services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing Services: %w", err)
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing Nodes: %w", err)
	}
	want, conflicts := assign(services, nodes)
	c.report(conflicts)

	var errs []error
	for _, s := range services {
		ingress, handled := want[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}]
		if !handled || equality.Semantic.DeepEqual(ingress, s.Status.LoadBalancer.Ingress) {
			continue
		}
		if err := c.setIngress(ctx, s, ingress); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// report records a Warning Event for every clash that is new or reads differently from last time.
func (c *controller) report(conflicts []conflict) {
	reported := make(map[types.NamespacedName]string, len(conflicts))
	for _, cf := range conflicts {
		name, msg := types.NamespacedName{Namespace: cf.service.Namespace, Name: cf.service.Name}, cf.message()
		reported[name] = msg
		if c.reported[name] == msg {
			continue
		}
		klog.InfoS("LoadBalancer Service not served", "service", klog.KObj(cf.service), "reason", msg)
		c.recorder.Event(cf.service, v1.EventTypeWarning, reasonPortConflict, msg)
	}
	c.reported = reported
}

// setIngress writes s's status.loadBalancer.ingress. A merge patch replaces the whole list
// without a resourceVersion check: the field is this controller's alone, and the next pass
// corrects a write that raced with a change.
func (c *controller) setIngress(ctx context.Context, s *v1.Service, ingress []v1.LoadBalancerIngress) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"loadBalancer": map[string]any{"ingress": ingress}}})
	if err != nil {
		return fmt.Errorf("encoding the load-balancer status of Service %s/%s: %w", s.Namespace, s.Name, err)
	}
	_, err = c.client.CoreV1().Services(s.Namespace).Patch(ctx, s.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return nil // deleted meanwhile; nothing was created for it, so nothing to clean up
	}
	if err != nil {
		return fmt.Errorf("updating the load-balancer status of Service %s/%s: %w", s.Namespace, s.Name, err)
	}
	if len(ingress) == 0 {
		klog.InfoS("LoadBalancer Service no longer served", "service", klog.KObj(s))
		return nil
	}
	ips := make([]string, len(ingress))
	for i, in := range ingress {
		ips[i] = in.IP
	}
	klog.InfoS("LoadBalancer Service served", "service", klog.KObj(s), "ips", ips)
	c.recorder.Eventf(s, v1.EventTypeNormal, reasonEnsured, "Serving on node IPs %s", strings.Join(ips, ", "))
	return nil
}
