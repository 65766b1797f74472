package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"

	containerdclient "github.com/containerd/containerd/v2/client"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/agent/containerd"
	"github.com/ketch-k8s/ketch/pkg/bundle"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/images"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
)

// nodeRuntime is the node's running container runtime: containerd with the pause image and the
// user's image tarballs imported, and the addon image on its way.
type nodeRuntime struct {
	// addonImage receives once, when the addon image is imported or could not be.
	addonImage chan error
}

// RuntimeStart is the node's container runtime starting in the background (StartRuntime).
type RuntimeStart struct {
	cancel context.CancelFunc
	done   chan struct{}
	rt     *nodeRuntime
	err    error
}

// StartRuntime starts, in the background, what a node needs before its kubelet and that needs
// neither the cluster nor its API: the runtime bundle unpacked, containerd, the pause image, the
// addon image and the image tarballs in the images dir. The server calls it before its control
// plane and an agent before it joins, so that this work (seconds of a first start: the bundle and
// the addon image are unpacked and imported) overlaps theirs instead of following it; Start waits
// for it. Containerd runs on a stage made now, the first of the node's, so that it stops last.
func StartRuntime(ctx context.Context, n *lifecycle.Node, node *config.Node) *RuntimeStart {
	stage := n.Stage("containerd")
	ctx, cancel := context.WithCancel(ctx)
	rs := &RuntimeStart{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		rs.rt, rs.err = startRuntime(ctx, n, stage, node)
	}()
	return rs
}

// wait returns the runtime once it runs, or why it could not start.
func (rs *RuntimeStart) wait(ctx context.Context) (*nodeRuntime, error) {
	select {
	case <-rs.done:
		return rs.rt, rs.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Abort ends a start-up that is still under way and waits for it to return, for a node whose
// start failed elsewhere: nothing of the start-up runs on after the node's start returns. What
// it started stops with its stage.
func (rs *RuntimeStart) Abort() {
	rs.cancel()
	<-rs.done
}

func startRuntime(ctx context.Context, n *lifecycle.Node, stage *lifecycle.Stage, node *config.Node) (*nodeRuntime, error) {
	paths := node.Paths()
	host := n.Host()
	binDir, err := bundle.Unpack(paths.BundleDir())
	if err != nil {
		return nil, fmt.Errorf("unpacking the runtime bundle: %w", err)
	}
	pauseName, pauseTar, err := images.PauseImage()
	if err != nil {
		return nil, err
	}
	client, err := startContainerd(ctx, n, stage, containerd.Config{
		Paths: paths, BinDir: binDir, SandboxImage: pauseName,
		SystemdCgroup:       host.CgroupDriver == hostcheck.CgroupDriverSystemd,
		RestrictOOMScoreAdj: host.RestrictOOMScoreAdj,
		// stderr is the log file unless --debug (the frame's console decides).
		Log: os.Stderr,
	})
	if err != nil {
		return nil, err
	}
	if _, err := images.Ensure(ctx, client, pauseName, bytes.NewReader(pauseTar), images.WithPinned()); err != nil {
		return nil, fmt.Errorf("importing the pause image: %w", err)
	}
	// The addon image (the addon program's layer to import on a first start) is made while the
	// kubelet and flannel start; the node turns Ready only once it is there, so no addon pod
	// ever finds it missing.
	rt := &nodeRuntime{addonImage: make(chan error, 1)}
	go func() {
		_, err := images.EnsureAddonsImage(ctx, client)
		rt.addonImage <- err
	}()
	// A bad tarball is reported, not fatal: the node is useful without the user's images.
	if results, err := images.ImportDir(ctx, client, paths.ImagesDir()); err != nil {
		klog.ErrorS(err, "Importing images", "dir", paths.ImagesDir())
	} else {
		for _, r := range results {
			klog.V(2).InfoS("Image tarball", "result", r)
		}
	}
	return rt, nil
}

// startContainerd starts containerd on stage, which stops after the node's components, and
// returns a client of it that the stage closes.
func startContainerd(ctx context.Context, n *lifecycle.Node, stage *lifecycle.Stage, cfg containerd.Config) (*containerdclient.Client, error) {
	// containerd runs for the stage's lifetime, but a stop while it is still starting must abort
	// the start.
	startCtx, cancel := context.WithCancel(stage.Context())
	abort := context.AfterFunc(ctx, cancel)
	ctrd, err := containerd.Start(startCtx, cfg)
	if !abort() && err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	n.Go(stage, "containerd", func(ctx context.Context) error {
		<-ctx.Done()
		ctrd.Stop()
		return nil
	})
	client, err := containerdclient.New(ctrd.Address())
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd: %w", err)
	}
	stage.OnStop(func() { client.Close() })
	return client, nil
}
