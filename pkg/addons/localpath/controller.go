package localpath

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	volumeutil "k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
)

const (
	// workers is how many claims and volumes are handled at once; each may wait up to
	// helperTimeout for a helper pod, so one unreachable node must not hold up the others.
	workers = 4

	// Retries back off from retryMin to retryMax: a node that lacks its storage-dir
	// annotation or has gone away is retried for as long as it takes, never in a hot loop.
	retryMin = time.Second
	retryMax = 2 * time.Minute

	helperPoll = 500 * time.Millisecond

	// Event reasons, those of the Kubernetes external-provisioner library.
	reasonProvisioning       = "Provisioning"
	reasonProvisioned        = "ProvisioningSucceeded"
	reasonProvisioningFailed = "ProvisioningFailed"
	reasonDeleteFailed       = "VolumeFailedDelete"
)

// item is a queued claim (key "namespace/name") or volume (key "name").
type item struct {
	volume bool
	key    string
}

type controller struct {
	client      kubernetes.Interface
	recorder    record.EventRecorder
	provisioner string
	namespace   string // of the helper pods
	helperImage string

	factory informers.SharedInformerFactory
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	nodes   corelisters.NodeLister
	classes storagelisters.StorageClassLister
	queue   workqueue.TypedRateLimitingInterface[item]
}

func newController(client kubernetes.Interface, recorder record.EventRecorder, opts options) (*controller, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(trimForCache))
	c := &controller{
		client:      client,
		recorder:    recorder,
		provisioner: opts.provisionerName,
		namespace:   opts.namespace,
		helperImage: opts.helperImage,
		factory:     factory,
		claims:      factory.Core().V1().PersistentVolumeClaims().Lister(),
		volumes:     factory.Core().V1().PersistentVolumes().Lister(),
		nodes:       factory.Core().V1().Nodes().Lister(),
		classes:     factory.Storage().V1().StorageClasses().Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[item](retryMin, retryMax),
			workqueue.TypedRateLimitingQueueConfig[item]{Name: component}),
	}
	_, err := factory.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueClaim,
		UpdateFunc: func(_, obj any) { c.enqueueClaim(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("watching claims: %w", err)
	}
	_, err = factory.Core().V1().PersistentVolumes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueVolume,
		UpdateFunc: func(_, obj any) { c.enqueueVolume(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("watching volumes: %w", err)
	}
	return c, nil
}

// trimForCache drops what the provisioner never reads from the objects its informers keep:
// it runs in 64 MiB, and node status (images, conditions) and managed fields are most of it.
func trimForCache(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	if n, ok := obj.(*corev1.Node); ok {
		n.Spec, n.Status = corev1.NodeSpec{}, corev1.NodeStatus{}
	}
	return obj, nil
}

func (c *controller) enqueueClaim(obj any) {
	if claim, ok := obj.(*corev1.PersistentVolumeClaim); ok && claimIsOurs(claim, c.provisioner) {
		c.queue.Add(item{key: claim.Namespace + "/" + claim.Name})
	}
}

func (c *controller) enqueueVolume(obj any) {
	if pv, ok := obj.(*corev1.PersistentVolume); ok && volumeToDelete(pv, c.provisioner) {
		c.queue.Add(item{volume: true, key: pv.Name})
	}
}

// run handles claims and volumes until ctx ends, then returns once every worker has stopped.
func (c *controller) run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.factory.StartWithContext(ctx)
	defer c.factory.Shutdown()
	if err := c.factory.WaitForCacheSyncWithContext(ctx).AsError(); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("reading claims, volumes, nodes and storage classes: %w", err)
	}
	klog.InfoS("Local-path provisioner started", "provisioner", c.provisioner)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *controller) processNext(ctx context.Context) bool {
	it, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(it)
	var err error
	if it.volume {
		err = c.syncVolume(ctx, it.key)
	} else {
		err = c.syncClaim(ctx, it.key)
	}
	switch {
	case err == nil:
		c.queue.Forget(it)
	case ctx.Err() != nil:
		// Stopping: the next leader starts over from the informers.
	default:
		// The event already tells the user; the log says it once per run of failures.
		if c.queue.NumRequeues(it) == 0 {
			klog.InfoS("Local-path provisioner will retry", "item", it.key, "volume", it.volume, "err", err)
		} else {
			klog.V(2).InfoS("Local-path provisioner will retry", "item", it.key, "volume", it.volume, "err", err)
		}
		c.queue.AddRateLimited(it)
	}
	return true
}

// syncClaim makes the volume of a claim of this provisioner once the scheduler has chosen its
// node. An error means try again later.
func (c *controller) syncClaim(ctx context.Context, key string) error {
	namespace, name, _ := strings.Cut(key, "/")
	claim, err := c.claims.PersistentVolumeClaims(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !claimIsOurs(claim, c.provisioner) {
		return nil
	}
	className := volumeutil.GetPersistentVolumeClaimClass(claim)
	class, err := c.classes.Get(className)
	if err != nil {
		return c.claimFailed(ctx, claim, fmt.Errorf("reading StorageClass %q: %w", className, err))
	}
	nodeName, err := planClaim(claim, class, c.provisioner)
	if err != nil {
		c.recorder.Event(claim, corev1.EventTypeWarning, reasonProvisioningFailed, err.Error())
		return nil // only a change to the claim can help, and that queues it again
	}
	if nodeName == "" {
		return nil
	}
	if _, err := c.volumes.Get(volumeName(claim)); err == nil {
		return nil // made already; the PV controller binds it
	}
	node, err := c.nodes.Get(nodeName)
	if err != nil {
		return c.claimFailed(ctx, claim, fmt.Errorf("reading the selected node %s: %w", nodeName, err))
	}
	storageDir, err := nodeStorageDir(node)
	if err != nil {
		return c.claimFailed(ctx, claim, err)
	}
	pv, err := newVolume(claim, class, node, storageDir, c.provisioner)
	if err != nil {
		return c.claimFailed(ctx, claim, err)
	}
	dir := pv.Spec.HostPath.Path
	c.recorder.Eventf(claim, corev1.EventTypeNormal, reasonProvisioning, "Making volume %s in %s on node %s", pv.Name, dir, node.Name)
	if err := c.runHelper(ctx, opCreate, pv.Name, node.Name, dir); err != nil {
		return c.claimFailed(ctx, claim, fmt.Errorf("making %s on node %s: %w", dir, node.Name, err))
	}
	_, err = c.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{FieldManager: component})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		// The directory stays; the retry finds it and makes the volume again.
		return c.claimFailed(ctx, claim, fmt.Errorf("creating volume %s: %w", pv.Name, err))
	}
	c.recorder.Eventf(claim, corev1.EventTypeNormal, reasonProvisioned, "Successfully provisioned volume %s", pv.Name)
	klog.InfoS("Provisioned volume", "claim", klog.KObj(claim), "volume", pv.Name, "node", node.Name, "dir", dir)
	return nil
}

// claimFailed reports err on claim and returns it, for a retry. Errors from stopping are
// nobody's concern.
func (c *controller) claimFailed(ctx context.Context, claim *corev1.PersistentVolumeClaim, err error) error {
	if ctx.Err() == nil {
		c.recorder.Event(claim, corev1.EventTypeWarning, reasonProvisioningFailed, err.Error())
	}
	return err
}

// syncVolume deletes the directory of a released volume of this provisioner on its node, then
// the volume. An error means try again later.
func (c *controller) syncVolume(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !volumeToDelete(pv, c.provisioner) {
		return nil
	}
	nodeName, dir, err := volumeLocation(pv)
	if err != nil {
		c.recorder.Event(pv, corev1.EventTypeWarning, reasonDeleteFailed, err.Error())
		return nil // only a change to the volume can help, and that queues it again
	}
	if _, err := c.nodes.Get(nodeName); err != nil {
		if apierrors.IsNotFound(err) {
			err = fmt.Errorf("node %s, which holds %s, is gone: the volume stays until the node comes back, or until you delete it (and the directory, if the node comes back) by hand", nodeName, dir)
		}
		return c.volumeFailed(ctx, pv, err)
	}
	if err := c.runHelper(ctx, opDelete, pv.Name, nodeName, dir); err != nil {
		return c.volumeFailed(ctx, pv, fmt.Errorf("deleting %s on node %s: %w", dir, nodeName, err))
	}
	err = c.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pv.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return c.volumeFailed(ctx, pv, fmt.Errorf("deleting volume %s: %w", pv.Name, err))
	}
	klog.InfoS("Deleted volume", "volume", pv.Name, "node", nodeName, "dir", dir)
	return nil
}

// volumeFailed reports err on pv and returns it, for a retry, as claimFailed does.
func (c *controller) volumeFailed(ctx context.Context, pv *corev1.PersistentVolume, err error) error {
	if ctx.Err() == nil {
		c.recorder.Event(pv, corev1.EventTypeWarning, reasonDeleteFailed, err.Error())
	}
	return err
}

// runHelper runs the helper pod for op on dir on node and waits for it to finish, then deletes
// it. A helper pod left from an earlier attempt (the provisioner died waiting) is adopted: it
// has the same name only if it does the same thing.
func (c *controller) runHelper(ctx context.Context, op helperOp, volume, node, dir string) error {
	pod := helperPod(op, volume, node, dir, c.helperImage, c.namespace)
	pods := c.client.CoreV1().Pods(c.namespace)
	_, err := pods.Create(ctx, pod, metav1.CreateOptions{FieldManager: component})
	if apierrors.IsAlreadyExists(err) {
		old, getErr := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if getErr == nil && old.DeletionTimestamp != nil {
			return fmt.Errorf("helper pod %s/%s from an earlier attempt is still being deleted", c.namespace, pod.Name)
		}
	} else if err != nil {
		return fmt.Errorf("creating helper pod %s/%s: %w", c.namespace, pod.Name, err)
	}
	defer c.deleteHelper(ctx, pod.Name)

	var failed error
	err = wait.PollUntilContextTimeout(ctx, helperPoll, helperTimeout, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, fmt.Errorf("helper pod %s/%s was deleted before it finished", c.namespace, pod.Name)
		}
		if err != nil {
			klog.V(2).InfoS("Reading helper pod", "pod", klog.KObj(pod), "err", err)
			return false, nil
		}
		done, err := helperResult(p)
		failed = err
		return done, nil
	})
	switch {
	case err == nil:
		return failed
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("helper pod %s/%s did not finish within %s: is node %s ready, and does it have image %s?", c.namespace, pod.Name, helperTimeout, node, c.helperImage)
	}
	return err
}

// deleteHelper deletes a finished or abandoned helper pod, even when ctx has ended, so that
// none lingers; a failed one would otherwise be adopted, and its failure reported again, by
// the next attempt.
func (c *controller) deleteHelper(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := c.client.CoreV1().Pods(c.namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		klog.InfoS("Could not delete helper pod", "pod", klog.KRef(c.namespace, name), "err", err)
	}
}
