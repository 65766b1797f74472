package etcd

import (
	"fmt"
	"os"
	"testing"

	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

// TestMain is also `ketch datastore check FILE`: the bbolt datastore checks its file in a child
// process of this executable when it opens it, as it does under ketch.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "datastore" && os.Args[2] == "check" {
		if err := mvcc.CheckFile(os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
