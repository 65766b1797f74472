// Command netbench is the workload of `ketch-bench multinode` and `ketch-bench addons`: a
// minimal TCP stream and request/response test between two pods, and a DNS lookup loop. It is
// built static and shipped alone in an image.
//
//	netbench server                    stream sink on :5201, 1-byte echo on :5202
//	netbench client stream HOST SECS   send for SECS seconds; prints JSON {bytes, seconds, bytesPerSec}
//	netbench client rr HOST COUNT      COUNT 1-byte round trips; prints JSON latency percentiles
//	netbench sleep                     wait for SIGTERM (a client pod's main process)
//	netbench mtu                       prints the MTU of eth0
//	netbench dns NAME COUNT            COUNT lookups of NAME after 100 unmeasured; prints each
//	                                   one's latency in microseconds, one per line
//
// The stream's rate is what the server counted, over the time from the client's first write
// to the server's reply with that count: bytes still in socket buffers are not counted as sent.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	streamPort = "5201"
	rrPort     = "5202"
	bufSize    = 128 << 10
	rrWarmup   = 200
	dnsWarmup  = 100
)

func main() {
	err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "netbench: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: netbench server | client stream HOST SECS | client rr HOST COUNT | sleep | mtu | dns NAME COUNT")
	}
	switch args[0] {
	case "server":
		return serve()
	case "mtu":
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fmt.Println(ifc.MTU)
		return nil
	case "sleep":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		return nil
	case "dns":
		if len(args) != 3 {
			return errors.New("usage: netbench dns NAME COUNT")
		}
		n, err := strconv.Atoi(args[2])
		if err != nil || n <= 0 {
			return fmt.Errorf("bad count %q", args[2])
		}
		return lookups(context.Background(), args[1], n)
	case "client":
		if len(args) != 4 {
			return errors.New("usage: netbench client stream|rr HOST N")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil || n <= 0 {
			return fmt.Errorf("bad count %q", args[3])
		}
		var res any
		switch args[1] {
		case "stream":
			res, err = stream(args[2], time.Duration(n)*time.Second)
		case "rr":
			res, err = requestResponse(args[2], n)
		default:
			return fmt.Errorf("unknown client mode %q", args[1])
		}
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

func serve() error {
	sl, err := net.Listen("tcp", ":"+streamPort)
	if err != nil {
		return err
	}
	rl, err := net.Listen("tcp", ":"+rrPort)
	if err != nil {
		return err
	}
	go accept(rl, echo)
	fmt.Println("netbench: serving on :" + streamPort + " (stream) and :" + rrPort + " (request/response)")
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		os.Exit(0)
	}()
	accept(sl, sink)
	return nil
}

func accept(l net.Listener, handle func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "netbench: accept: %v\n", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go handle(c)
	}
}

// sink reads until the client closes its side, then answers with the byte count.
func sink(c net.Conn) {
	defer c.Close()
	n, err := io.CopyBuffer(io.Discard, c, make([]byte, bufSize))
	if err != nil {
		return
	}
	_ = binary.Write(c, binary.BigEndian, uint64(n))
}

func echo(c net.Conn) {
	defer c.Close()
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		if _, err := c.Write(b); err != nil {
			return
		}
	}
}

type streamResult struct {
	Bytes       uint64  `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	BytesPerSec float64 `json:"bytesPerSec"`
}

func stream(host string, d time.Duration) (streamResult, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, streamPort), 5*time.Second)
	if err != nil {
		return streamResult{}, err
	}
	defer c.Close()
	buf := make([]byte, bufSize)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	start := time.Now()
	end := start.Add(d)
	for time.Now().Before(end) {
		if _, err := c.Write(buf); err != nil {
			return streamResult{}, err
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return streamResult{}, err
	}
	var n uint64
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		return streamResult{}, fmt.Errorf("reading the server's count: %w", err)
	}
	secs := time.Since(start).Seconds()
	return streamResult{Bytes: n, Seconds: secs, BytesPerSec: float64(n) / secs}, nil
}

type rrResult struct {
	Count  int     `json:"count"`
	P50us  float64 `json:"p50us"`
	P99us  float64 `json:"p99us"`
	MeanUs float64 `json:"meanUs"`
	MaxUs  float64 `json:"maxUs"`
}

func requestResponse(host string, count int) (rrResult, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, rrPort), 5*time.Second)
	if err != nil {
		return rrResult{}, err
	}
	defer c.Close()
	b := []byte{1}
	lats := make([]time.Duration, 0, count)
	var sum time.Duration
	for i := range rrWarmup + count {
		t := time.Now()
		if _, err := c.Write(b); err != nil {
			return rrResult{}, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return rrResult{}, err
		}
		if i >= rrWarmup {
			d := time.Since(t)
			lats = append(lats, d)
			sum += d
		}
	}
	slices.Sort(lats)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	rank := func(p float64) time.Duration {
		return lats[min(max(int(math.Ceil(p*float64(len(lats))))-1, 0), len(lats)-1)]
	}
	return rrResult{Count: count, P50us: us(rank(0.5)), P99us: us(rank(0.99)), MeanUs: us(sum / time.Duration(count)), MaxUs: us(lats[len(lats)-1])}, nil
}

// lookups resolves name dnsWarmup+count times in a row with Go's own resolver, the way a Go
// program in a pod does, and prints the latency of the last count lookups. Only a fully
// qualified name is accepted: any other would be tried with each search domain of the pod's
// resolv.conf first, so one lookup would be several queries.
func lookups(ctx context.Context, name string, count int) error {
	if !strings.HasSuffix(name, ".") {
		return fmt.Errorf("%q is not fully qualified (no trailing dot)", name)
	}
	r := &net.Resolver{PreferGo: true}
	w := bufio.NewWriter(os.Stdout)
	for i := range dnsWarmup + count {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t := time.Now()
		// "ip4": one A query, no AAAA.
		_, err := r.LookupIP(lctx, "ip4", name)
		d := time.Since(t)
		cancel()
		if err != nil {
			return fmt.Errorf("lookup %d of %s: %w", i+1, name, err)
		}
		if i >= dnsWarmup {
			fmt.Fprintf(w, "%.1f\n", float64(d)/float64(time.Microsecond))
		}
	}
	return w.Flush()
}
