// Package bootstrap is what every server of a cluster must share before it starts its control
// plane: the CAs with their keys and the service-account key (pki.SharedFiles, and with embedded
// etcd pki.SharedEtcdFiles), and the settings that must agree across servers. A server joining
// an embedded etcd cluster gets it from the first server's supervisor; servers on an external
// etcd keep it in the datastore, encrypted with a key derived from the cluster's token.
package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/pki"
)

// Bundle is the bootstrap data: file contents by their path below the control plane's tls dir,
// and the settings.
type Bundle struct {
	Files    map[string][]byte      `json:"files"`
	Settings config.ClusterSettings `json:"settings"`
}

// Read collects the shared files from tlsDir (with etcd's if withEtcd) and the settings.
func Read(tlsDir string, withEtcd bool, settings config.ClusterSettings) (*Bundle, error) {
	b := &Bundle{Files: map[string][]byte{}, Settings: settings}
	names := pki.SharedFiles
	if withEtcd {
		names = append(slices.Clone(names), pki.SharedEtcdFiles...)
	}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(tlsDir, name))
		if err != nil {
			return nil, fmt.Errorf("reading the cluster's bootstrap data: %w", err)
		}
		b.Files[name] = data
	}
	return b, nil
}

// ErrOtherCluster is a server whose data dir already holds another cluster's CAs.
var ErrOtherCluster = errors.New("this server's data dir belongs to another cluster")

// Write puts the bundle's files into tlsDir. A file that is already there must be the same,
// unless replace says it may go (it was made by this start and nothing was signed with it yet):
// a server never swaps the CAs its certificates and tokens were made with.
func (b *Bundle) Write(tlsDir string, replace bool) error {
	if err := b.check(); err != nil {
		return err
	}
	names := make([]string, 0, len(b.Files))
	for name := range b.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	var differ []string
	for _, name := range names {
		have, err := os.ReadFile(filepath.Join(tlsDir, name))
		if err == nil && !bytes.Equal(have, b.Files[name]) {
			differ = append(differ, name)
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", name, err)
		}
	}
	if len(differ) > 0 && !replace {
		return fmt.Errorf("%w: %s in %s differ from the cluster's; if this machine should leave its old cluster, move %s away and start it again",
			ErrOtherCluster, strings.Join(differ, ", "), tlsDir, filepath.Dir(tlsDir))
	}
	for _, name := range names {
		path := filepath.Join(tlsDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		if err := renameio.WriteFile(path, b.Files[name], mode); err != nil {
			return fmt.Errorf("writing the cluster's bootstrap data: %w", err)
		}
	}
	return nil
}

// check refuses a bundle that lacks a shared file or names a path outside the tls dir.
func (b *Bundle) check() error {
	for _, name := range pki.SharedFiles {
		if len(b.Files[name]) == 0 {
			return fmt.Errorf("the cluster's bootstrap data lacks %s", name)
		}
	}
	for name := range b.Files {
		if !slices.Contains(pki.SharedFiles, name) && !slices.Contains(pki.SharedEtcdFiles, name) {
			return fmt.Errorf("the cluster's bootstrap data holds an unexpected file %q", name)
		}
	}
	return nil
}

// HasEtcd is whether the bundle carries embedded etcd's CAs.
func (b *Bundle) HasEtcd() bool { return len(b.Files[pki.SharedEtcdFiles[0]]) > 0 }
