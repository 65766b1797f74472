package lifecycle

import (
	"net"
	"os"
	"strings"

	"k8s.io/klog/v2"
)

// notifier tells a service manager that waits for it (systemd's Type=notify, see sd_notify(3))
// what start-up is doing, that the node is Ready, and that it stops.
//
// It is not go-systemd's daemon.SdNotify, which reads NOTIFY_SOCKET at every call: the kubelet
// runs in this process and calls that itself as soon as it starts (READY=1), which would tell
// systemd the node is up minutes before it is. So the frame takes the variable out of the
// environment before anything starts and keeps the address to itself.
type notifier struct {
	addr string
}

// takeNotifySocket removes NOTIFY_SOCKET from the environment and returns a notifier for it (one
// that does nothing when the process was not started by a service manager that listens).
func takeNotifySocket() notifier {
	addr := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	return notifier{addr: addr}
}

// send sends one state message, lines of KEY=VALUE. A service manager that is gone or
// unreachable must not stop the node, so failures are only logged.
func (s notifier) send(state ...string) {
	if s.addr == "" {
		return
	}
	// Go maps a leading '@' to Linux's abstract socket namespace, as systemd means it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.addr, Net: "unixgram"})
	if err != nil {
		klog.V(1).InfoS("Cannot reach the service manager", "socket", s.addr, "err", err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(state, "\n"))); err != nil {
		klog.V(1).InfoS("Cannot notify the service manager", "socket", s.addr, "err", err)
	}
}

// status is a STATUS= line: systemctl status shows it. One line, so a value with a newline
// cannot add a field.
func status(text string) string {
	return "STATUS=" + strings.ReplaceAll(text, "\n", " ")
}
