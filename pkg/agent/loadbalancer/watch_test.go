package loadbalancer

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

type ep struct {
	addrs []string
	ready *bool
}

func slice(name, service string, addrType discoveryv1.AddressType, ports map[string]int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: addrType,
	}
	for n, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To(n), Port: ptr.To(p), Protocol: ptr.To(corev1.ProtocolTCP)})
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: e.addrs, Conditions: discoveryv1.EndpointConditions{Ready: e.ready}})
	}
	return s
}

func TestServerAddresses(t *testing.T) {
	https := map[string]int32{"https": 6443}
	for _, tc := range []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		want   []string
	}{
		{"none", nil, nil},
		{"ready only, nil counts as ready, sorted", []*discoveryv1.EndpointSlice{
			slice("kubernetes", "kubernetes", discoveryv1.AddressTypeIPv4, https,
				ep{[]string{"10.0.0.3"}, ptr.To(true)},
				ep{[]string{"10.0.0.2"}, ptr.To(false)},
				ep{[]string{"10.0.0.1"}, nil}),
		}, []string{"10.0.0.1:6443", "10.0.0.3:6443"}},
		{"IPv6 in brackets", []*discoveryv1.EndpointSlice{
			slice("kubernetes", "kubernetes", discoveryv1.AddressTypeIPv6, https, ep{[]string{"fd00::1"}, ptr.To(true)}),
		}, []string{"[fd00::1]:6443"}},
		{"the port named https", []*discoveryv1.EndpointSlice{
			slice("kubernetes", "kubernetes", discoveryv1.AddressTypeIPv4, map[string]int32{"metrics": 9000, "https": 443},
				ep{[]string{"10.0.0.1"}, ptr.To(true)}),
		}, []string{"10.0.0.1:443"}},
		{"no https port", []*discoveryv1.EndpointSlice{
			slice("kubernetes", "kubernetes", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 80}, ep{[]string{"10.0.0.1"}, nil}),
		}, nil},
		{"several slices, other services ignored, duplicates dropped", []*discoveryv1.EndpointSlice{
			slice("kubernetes", "kubernetes", discoveryv1.AddressTypeIPv4, https, ep{[]string{"10.0.0.2"}, nil}),
			slice("kubernetes-x", "kubernetes", discoveryv1.AddressTypeIPv4, https, ep{[]string{"10.0.0.2", "10.0.0.1"}, nil}),
			slice("kubernetes-v6", "kubernetes", discoveryv1.AddressTypeIPv6, https, ep{[]string{"fd00::2"}, nil}),
			slice("other", "other", discoveryv1.AddressTypeIPv4, https, ep{[]string{"10.9.9.9"}, nil}),
			nil,
		}, []string{"10.0.0.1:6443", "10.0.0.2:6443", "[fd00::2]:6443"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := serverAddresses(tc.slices...); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
