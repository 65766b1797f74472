package loadbalancer

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

const (
	kubernetesService = "kubernetes"
	httpsPortName     = "https"

	watchMinBackoff = time.Second
	watchMaxBackoff = 30 * time.Second
)

// WatchServers keeps the server list of lb equal to the kube-apiserver addresses in the
// default/kubernetes EndpointSlices (kubernetes.io/service-name=kubernetes, port named "https"),
// until ctx ends, re-listing on errors with backoff. An empty address list (no ready endpoint) is
// ignored: lb keeps its previous servers rather than falling back to the default server alone.
// client needs to list and watch endpointslices in the default namespace.
func WatchServers(ctx context.Context, client kubernetes.Interface, lb *LoadBalancer) {
	delay := watchMinBackoff
	failing := false
	for ctx.Err() == nil {
		start := time.Now()
		err := watchServersOnce(ctx, client, lb, func() {
			if failing {
				failing = false
				klog.InfoS("Load balancer watching kube-apiserver endpoints again", "address", lb.Addr())
			}
		})
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > watchMaxBackoff {
			delay = watchMinBackoff // it ran for a while: this is not a tight failure loop
		}
		if err != nil {
			if !failing {
				failing = true
				klog.InfoS("Load balancer cannot watch kube-apiserver endpoints; retrying", "address", lb.Addr(), "err", err)
			} else {
				klog.V(2).InfoS("Load balancer cannot watch kube-apiserver endpoints; retrying", "address", lb.Addr(), "err", err, "delay", delay)
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err != nil {
			delay = min(2*delay, watchMaxBackoff)
		}
	}
}

// watchServersOnce lists the EndpointSlices, then watches them until the watch ends (nil: the
// caller lists again), fails or ctx ends. ok is called once the list succeeded.
func watchServersOnce(ctx context.Context, client kubernetes.Interface, lb *LoadBalancer, ok func()) error {
	api := client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault)
	opts := metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + kubernetesService}
	list, err := api.List(ctx, opts)
	if err != nil {
		return fmt.Errorf("listing the %s/%s EndpointSlices: %w", metav1.NamespaceDefault, kubernetesService, err)
	}
	ok()
	current := map[string]*discoveryv1.EndpointSlice{}
	for i := range list.Items {
		current[list.Items[i].Name] = &list.Items[i]
	}
	update := func() {
		addrs := serverAddresses(slices.Collect(maps.Values(current))...)
		if len(addrs) == 0 {
			klog.V(2).InfoS("Load balancer: no ready kube-apiserver endpoint; keeping the servers", "address", lb.Addr(), "servers", lb.Servers())
			return
		}
		lb.SetServers(addrs)
	}
	update()

	opts.ResourceVersion = list.ResourceVersion
	opts.AllowWatchBookmarks = true
	w, err := api.Watch(ctx, opts)
	if err != nil {
		return fmt.Errorf("watching the %s/%s EndpointSlices: %w", metav1.NamespaceDefault, kubernetesService, err)
	}
	defer w.Stop()
	for {
		var ev watch.Event
		select {
		case <-ctx.Done():
			return nil
		case e, open := <-w.ResultChan():
			if !open {
				return nil
			}
			ev = e
		}
		switch ev.Type {
		case watch.Added, watch.Modified, watch.Deleted:
			s, isSlice := ev.Object.(*discoveryv1.EndpointSlice)
			if !isSlice {
				return fmt.Errorf("watching the %s/%s EndpointSlices: unexpected object %T", metav1.NamespaceDefault, kubernetesService, ev.Object)
			}
			if ev.Type == watch.Deleted {
				delete(current, s.Name)
			} else {
				current[s.Name] = s
			}
			update()
		case watch.Error:
			return fmt.Errorf("watching the %s/%s EndpointSlices: %w", metav1.NamespaceDefault, kubernetesService, apierrors.FromObject(ev.Object))
		}
	}
}

// serverAddresses converts the EndpointSlices of the kubernetes service into kube-apiserver
// addresses ("host:port", IPv6 in brackets), sorted and without duplicates: the addresses of
// ready endpoints (a nil ready condition counts as ready) with the port named "https", from the
// slices labelled kubernetes.io/service-name=kubernetes.
func serverAddresses(eps ...*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range eps {
		if s == nil || s.Labels[discoveryv1.LabelServiceName] != kubernetesService {
			continue
		}
		port := int32(0)
		for _, p := range s.Ports {
			if p.Name != nil && *p.Name == httpsPortName && p.Port != nil && *p.Port > 0 &&
				(p.Protocol == nil || *p.Protocol == "TCP") {
				port = *p.Port
				break
			}
		}
		if port == 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				if a != "" {
					out = append(out, net.JoinHostPort(a, strconv.Itoa(int(port))))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
