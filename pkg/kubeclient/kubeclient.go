// Package kubeclient turns a kubeconfig file into a Kubernetes API client: the one way ketch's
// own code (the server, the node, the CLI) builds its clients.
package kubeclient

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Config loads the kubeconfig at path.
func Config(path string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", path, err)
	}
	return rc, nil
}

// New is a client with the credentials of the kubeconfig at path. It does not connect: a client
// made before kube-apiserver serves works once it does.
func New(path string) (kubernetes.Interface, error) {
	rc, err := Config(path)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("client from %s: %w", path, err)
	}
	return c, nil
}
