// Package manifests holds the addon manifests that `ketch server` writes into
// <data-dir>/server/manifests on start, one file per addon, named <addon>.yaml. Each is a
// text/template of Values.
package manifests

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"text/template"
)

//go:embed *.yaml
var files embed.FS

// Values are what the templates may use.
type Values struct {
	// AddonsImage is the image every node builds for the addon pods (images.AddonsImageName).
	AddonsImage string
	// ClusterDNS is kube-dns's ClusterIP; ClusterDomain the cluster's DNS domain.
	ClusterDNS    string
	ClusterDomain string
}

// Addons lists the bundled addons' names, sorted: the names --disable accepts.
func Addons() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Render returns every bundled manifest rendered with v, keyed by file name (<addon>.yaml).
func Render(v Values) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, name := range Addons() {
		file := name + ".yaml"
		raw, err := files.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("bundled manifest %s: %w", file, err)
		}
		tmpl, err := template.New(file).Option("missingkey=error").Parse(string(raw))
		if err != nil {
			return nil, fmt.Errorf("bundled manifest %s: %w", file, err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, v); err != nil {
			return nil, fmt.Errorf("bundled manifest %s: %w", file, err)
		}
		out[file] = b.Bytes()
	}
	return out, nil
}
