// Command etcdserver is the upstream etcd server, built from the go.etcd.io/etcd/server/v3
// module at the version go.mod pins. Tests run it as the external etcd cluster that
// `ketch server --datastore-endpoint` uses; it takes etcd's own flags.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
