package lifecycle

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"
)

// SignalContext is the context of a long-running command: the first SIGTERM or SIGINT ends it,
// which stops the node cleanly; a second one exits the process at once with status 1, for a stop
// that takes too long (as the kubelet's own handler does, which also sees the signals).
func SignalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-signals:
			cancel()
		case <-ctx.Done():
			signal.Stop(signals)
			return
		}
		<-signals
		klog.InfoS("Second signal: exiting without waiting for the components to stop")
		klog.Flush()
		os.Exit(1)
	}()
	return ctx, cancel
}
