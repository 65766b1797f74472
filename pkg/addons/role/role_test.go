package role

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestRESTConfig(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443"}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	cfg, err := RESTConfig(kubeconfig, "ketch-test")
	if err != nil || cfg.Host != "https://127.0.0.1:6443" || cfg.BearerToken != "t" || cfg.UserAgent != "ketch-test" {
		t.Errorf("from a kubeconfig: %+v, %v", cfg, err)
	}
	if _, err := RESTConfig(filepath.Join(t.TempDir(), "missing"), "ketch-test"); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("a missing kubeconfig: %v, want an error naming --kubeconfig", err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := RESTConfig("", "ketch-test"); err == nil || !strings.Contains(err.Error(), "give --kubeconfig") {
		t.Errorf("outside a pod without a kubeconfig: %v, want an error saying to give --kubeconfig", err)
	}
}
