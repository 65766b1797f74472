// Package nodehosts keeps the NodeHosts key of CoreDNS's ConfigMap (kube-system/coredns) listing
// every node's InternalIP and name, which CoreDNS's hosts plugin serves, so that pods resolve node
// names. It runs in the server.
package nodehosts

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const (
	namespace = "kube-system"
	configMap = "coredns"
	// Key is the ConfigMap key CoreDNS's Corefile reads as a hosts file.
	Key = "NodeHosts"
	// fieldManager owns Key only, so the deploy controller's applies of the rest of the
	// ConfigMap never clear it.
	fieldManager = "ketch-nodehosts"
	// retry bounds how long a failed update waits when no event comes.
	retry = 10 * time.Second
)

// Run keeps NodeHosts current until ctx ends. It only updates the ConfigMap, never creates it:
// without the coredns addon (--disable coredns) there is nothing to keep current.
func Run(ctx context.Context, client kubernetes.Interface) error {
	nodeFactory := informers.NewSharedInformerFactory(client, 0)
	cmFactory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + configMap }))
	nodes := nodeFactory.Core().V1().Nodes()
	cms := cmFactory.Core().V1().ConfigMaps()

	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	if _, err := nodes.Informer().AddEventHandler(handler); err != nil {
		return fmt.Errorf("nodehosts: %w", err)
	}
	if _, err := cms.Informer().AddEventHandler(handler); err != nil {
		return fmt.Errorf("nodehosts: %w", err)
	}
	nodeFactory.Start(ctx.Done())
	cmFactory.Start(ctx.Done())
	defer nodeFactory.Shutdown()
	defer cmFactory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced, cms.Informer().HasSynced) {
		return nil // ctx ended
	}

	timer := time.NewTimer(retry)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-timer.C:
		}
		timer.Reset(retry)
		list, err := nodes.Lister().List(labels.Everything())
		if err != nil {
			klog.ErrorS(err, "Listing nodes for NodeHosts")
			continue
		}
		cm, err := cms.Lister().ConfigMaps(namespace).Get(configMap)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			klog.ErrorS(err, "Reading ConfigMap for NodeHosts", "configmap", namespace+"/"+configMap)
			continue
		}
		want := Hosts(list)
		if cm.Data[Key] == want {
			continue
		}
		if err := update(ctx, client, want); err != nil {
			klog.ErrorS(err, "Updating NodeHosts", "configmap", namespace+"/"+configMap)
			continue
		}
		klog.V(2).InfoS("Updated NodeHosts", "nodes", len(list))
	}
}

// update applies Key alone, server-side, so the field has one owner that is not the manifest.
func update(ctx context.Context, client kubernetes.Interface, hosts string) error {
	patch := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":%q},"data":{%q:%q}}`,
		configMap, namespace, Key, hosts)
	_, err := client.CoreV1().ConfigMaps(namespace).Patch(ctx, configMap, "application/apply-patch+yaml", []byte(patch),
		metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true)})
	return err
}

// Hosts renders the nodes as a hosts file: "<InternalIP> <name>" per address, sorted by name
// then address, so the content only changes when the nodes do.
func Hosts(nodes []*corev1.Node) string {
	var lines []string
	sorted := append([]*corev1.Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, n := range sorted {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				lines = append(lines, a.Address+" "+n.Name)
			}
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}
