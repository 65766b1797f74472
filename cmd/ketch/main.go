// Command ketch is the single binary of the ketch Kubernetes distribution; its command line is
// package app.
package main

import (
	"os"

	"github.com/ketch-k8s/ketch/cmd/ketch/app"
)

func main() { os.Exit(app.Main(os.Args)) }
