package manifests

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/yaml"
)

func TestRender(t *testing.T) {
	if got, want := Addons(), []string{"coredns", "dashboard", "local-storage", "metrics-server", "servicelb"}; !slices.Equal(got, want) {
		t.Fatalf("Addons() = %v, want %v", got, want)
	}
	v := Values{AddonsImage: "localhost/ketch/addons:0123456789abcdef", ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local"}
	files, err := Render(v)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if !bytes.Contains(content, []byte(v.AddonsImage)) {
			t.Errorf("%s does not run the addon image", name)
		}
		if bytes.Contains(content, []byte("{{")) || bytes.Contains(content, []byte("<no value>")) {
			t.Errorf("%s has unrendered template text", name)
		}
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(content), 4096)
		for i := 0; ; i++ {
			var doc map[string]any
			if err := dec.Decode(&doc); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("%s document %d: %v", name, i, err)
				}
				break
			}
		}
	}
	if !bytes.Contains(files["coredns.yaml"], []byte("clusterIP: 10.43.0.10")) || !bytes.Contains(files["coredns.yaml"], []byte("kubernetes cluster.local ")) {
		t.Errorf("coredns.yaml does not use the cluster DNS IP and domain:\n%s", files["coredns.yaml"])
	}
	if _, err := Render(Values{}); err != nil {
		t.Errorf("Render with empty values: %v", err) // empty strings are values too
	}
}
