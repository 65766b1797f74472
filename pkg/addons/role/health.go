package role

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"k8s.io/klog/v2"
)

// ServeHealth serves GET /healthz on addr until stop is called: 200 "ok" while check passes,
// else 503 with check's error. It listens before returning, so that a bad or taken address
// fails the role's start rather than its probes.
func ServeHealth(addr string, check func() error) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serving /healthz: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := check(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		// Serve fails only if accepting does; the probes then fail and the kubelet restarts the pod.
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Serving /healthz", "addr", addr)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
	}, nil
}
