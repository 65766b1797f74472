// Command reference writes docs/reference.md from ketch's command definitions (`make docs`).
package main

import (
	"fmt"
	"os"

	"github.com/ketch-k8s/ketch/cmd/ketch/app"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: reference FILE")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], []byte(app.Reference(app.New())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
