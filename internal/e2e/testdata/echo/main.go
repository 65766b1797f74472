// Command echo is the end-to-end tests' workload: an HTTP server that answers with the name
// of the pod it runs in, so that a test can see which replica served a request. `echo resolve
// NAME...` instead looks the names up as a Go program in the pod would (the pod's resolv.conf,
// search path and ndots) and prints "NAME ADDR,ADDR..." or "NAME error: ..." per name.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "resolve" {
		for _, name := range os.Args[2:] {
			addrs, err := net.DefaultResolver.LookupHost(context.Background(), name)
			if err != nil {
				fmt.Printf("%s error: %v\n", name, err)
				continue
			}
			fmt.Printf("%s %s\n", name, strings.Join(addrs, ","))
		}
		return
	}
	addr := ":8080"
	if p := os.Getenv("PORT"); p != "" {
		addr = ":" + p
	}
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("request %s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
		fmt.Fprintf(w, "hostname=%s\n", host)
	})
	log.Printf("listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
