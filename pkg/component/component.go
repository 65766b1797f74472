// Package component tracks the Kubernetes components ketch runs in its own process.
package component

import (
	"context"
	"fmt"
)

// Component is a component running in a goroutine of this process.
type Component struct {
	Name string
	done chan struct{}
	err  error
}

// Start runs run in a goroutine as the component called name.
func Start(name string, run func() error) *Component {
	c := &Component{Name: name, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		if err := run(); err != nil {
			c.err = fmt.Errorf("%s: %w", name, err)
		}
	}()
	return c
}

// StartUnstoppable runs run like Start, for a component whose upstream code never returns
// once started (kubelet, kube-proxy): it counts as stopped when ctx ends, and whatever it still
// runs ends with the process.
func StartUnstoppable(ctx context.Context, name string, run func() error) *Component {
	c := &Component{Name: name, done: make(chan struct{})}
	finished := make(chan error, 1)
	go func() { finished <- run() }()
	go func() {
		defer close(c.done)
		select {
		case err := <-finished:
			if err != nil {
				c.err = fmt.Errorf("%s: %w", name, err)
			}
		case <-ctx.Done():
		}
	}()
	return c
}

// Done is closed when the component has stopped.
func (c *Component) Done() <-chan struct{} { return c.done }

// Err is why the component stopped, once Done is closed: nil if it stopped without an error.
func (c *Component) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Stopped turns a stop into an error: a component that stops on its own, even cleanly, has
// failed the node.
func (c *Component) Stopped() error {
	if c.Err() != nil {
		return c.err
	}
	return fmt.Errorf("%s stopped", c.Name)
}
