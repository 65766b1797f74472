package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/dockerd"
	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/sections"
)

// `ketch-bench docker` measures ketch in Docker as a user of the node image meets it: docker run
// to a Ready node, a three-node cluster made by scripts/ketch-docker-cluster.sh, cold (new
// volumes) and warm (the same volumes again), and the idle memory of that cluster.

var dockerCmd = &command{
	name:     "docker",
	synopsis: "docker --ketch-bin PATH [flags]",
	help: `docker: the node image (the Dockerfile) in a private Docker engine: docker run of a server to
node Ready, cold (a new volume) and warm (a new container on the same volume); a server and two
agents made by scripts/ketch-docker-cluster.sh to all three Ready, cold (create) and warm (stop,
then start); and the idle memory of that cluster, PSS of every process in its containers. Runs
as root, holds /tmp/ketch-host.lock, starts and stops its own dockerd (images kept in
/var/tmp/ketch-bench-docker) and removes every container, network and volume it made.

  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose docker section is replaced
  --quick              1 run of each instead of 3, 20 s idle instead of 1 min
  --script PATH        ketch-docker-cluster.sh (default scripts/ketch-docker-cluster.sh here)
`,
	run: runDocker,
}

const (
	benchImage         = "localhost/ketch:bench"
	benchNetwork       = "kb-docker"
	dockerBenchCluster = "kb"
	// The Docker engine's images are kept between runs, like the tests' (dockertest.CacheDir).
	benchDockerRoot = "/var/tmp/ketch-bench-docker"
)

func runDocker(args []string) (err error) {
	fs := newFlags("docker")
	var o struct {
		ketchBin, out, script string
		quick                 bool
	}
	fs.StringVar(&o.ketchBin, "ketch-bin", "", "")
	fs.StringVar(&o.out, "out", "", "")
	fs.StringVar(&o.script, "script", "scripts/ketch-docker-cluster.sh", "")
	fs.BoolVar(&o.quick, "quick", false, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.ketchBin == "" {
		return errors.New("--ketch-bin is required")
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root: it starts a Docker engine")
	}
	script, err := filepath.Abs(o.script)
	if err != nil {
		return err
	}
	started := time.Now()
	logf := progressLog(started)
	ctx, stop := interruptible()
	defer stop()
	lock, err := harness.LockHost(ctx, logf)
	if err != nil {
		return err
	}
	defer lock.Release()

	runs, idle := 3, time.Minute
	if o.quick {
		runs, idle = 1, 20*time.Second
	}
	res := sections.DockerResult{Load: report.LoadAverage()}
	logDir, err := os.MkdirTemp("", "ketch-bench-docker-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(logDir)
	logf("starting a private dockerd (data root %s)", benchDockerRoot)
	e, err := dockerd.Start(ctx, benchDockerRoot, filepath.Join(logDir, "dockerd.log"))
	if err != nil {
		return err
	}
	defer e.Stop()
	b := &dockerBench{e: e, script: script, logf: logf}
	defer b.cleanup()
	defer func() {
		if err != nil {
			b.keepLogs()
		}
	}()

	logf("building the node image")
	if err := e.BuildNodeImage(ctx, o.ketchBin, "Dockerfile", benchImage); err != nil {
		return err
	}
	if out, err := e.Run(ctx, "image", "inspect", "--format", "{{.Size}}", benchImage); err == nil {
		res.ImageSize, _ = strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	}
	if st, err := os.Stat(o.ketchBin); err == nil {
		res.BinarySize = st.Size()
	}
	if _, err := e.Run(ctx, "network", "create", "--subnet", "10.215.0.0/24", "--opt", "com.docker.network.bridge.name="+benchNetwork, benchNetwork); err != nil {
		return err
	}

	// One node: cold on a new volume each time; warm on one volume, a new container each time.
	for i := 0; i < runs; i++ {
		d, err := b.single(ctx, fmt.Sprintf("kb-single-cold-%d", i))
		if err != nil {
			return err
		}
		logf("single node, cold %d: %s", i+1, d.Round(10*time.Millisecond))
		res.SingleCold = append(res.SingleCold, d)
	}
	if _, err := b.single(ctx, "kb-single-warm"); err != nil { // the volume's first start
		return err
	}
	for i := 0; i < runs; i++ {
		d, err := b.single(ctx, "kb-single-warm")
		if err != nil {
			return err
		}
		logf("single node, warm %d: %s", i+1, d.Round(10*time.Millisecond))
		res.SingleWarm = append(res.SingleWarm, d)
	}

	// Three nodes with the script: create (cold) and delete; then one cluster stopped and started.
	for i := 0; i < runs; i++ {
		d, err := b.clusterCreate(ctx)
		if err != nil {
			return err
		}
		logf("cluster, cold %d: %s", i+1, d.Round(10*time.Millisecond))
		res.ClusterCold = append(res.ClusterCold, d)
		if i < runs-1 {
			if _, err := b.runScript(ctx, "delete", dockerBenchCluster); err != nil {
				return err
			}
		}
	}
	for i := 0; i < runs; i++ {
		if _, err := b.runScript(ctx, "stop", dockerBenchCluster); err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := b.runScript(ctx, "start", dockerBenchCluster); err != nil {
			return err
		}
		d := time.Since(t0)
		logf("cluster, warm %d: %s", i+1, d.Round(10*time.Millisecond))
		res.ClusterWarm = append(res.ClusterWarm, d)
	}
	logf("idle for %s, then the cluster's memory", idle)
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	for _, n := range []string{"server", "agent-1", "agent-2"} {
		name := "ketch-" + dockerBenchCluster + "-" + n
		id, err := e.Run(ctx, "inspect", "--format", "{{.Id}}", name)
		if err != nil {
			return err
		}
		pids, err := pidsInCgroupOf(strings.TrimSpace(id))
		if err != nil {
			return err
		}
		res.Memory = append(res.Memory, sections.DockerMemory{Container: name, Mem: harness.MemoryOf(pids)})
	}
	res.Idle = idle
	res.LoadEnd = report.LoadAverage()
	rep := sections.Docker{Quick: o.quick, Args: args, KetchBin: o.ketchBin, Runs: runs,
		Machine: report.DescribeMachine(benchDockerRoot, o.ketchBin), Result: res, Elapsed: time.Since(started), Date: started}
	return publish(o.out, "docker", rep.Section(), time.Since(started), logf)
}

type dockerBench struct {
	e      *dockerd.Engine
	script string
	logf   func(string, ...any)
}

// single starts a server container on volume vol and returns the time from docker run to its
// "node Ready" line; the container is removed again (the volume stays until cleanup).
func (b *dockerBench) single(ctx context.Context, vol string) (time.Duration, error) {
	const name = "kb-single"
	b.e.Run(ctx, "rm", "--force", name)
	args := append([]string{"run", "--detach", "--name", name, "--hostname", name, "--network", benchNetwork,
		"--tmpfs", "/run", "--tmpfs", "/var/run", "--volume", vol + ":/var/lib/ketch"}, dockerd.Privileges...)
	t0 := time.Now()
	if _, err := b.e.Run(ctx, append(args, benchImage, "server")...); err != nil {
		return 0, err
	}
	d, err := b.waitLine(ctx, name, "node Ready", t0, 3*time.Minute)
	if err != nil {
		return 0, err
	}
	_, err = b.e.Run(ctx, "rm", "--force", name)
	return d, err
}

// waitLine follows a container's output until a line containing what, and returns the time
// from since to that line's arrival.
func (b *dockerBench) waitLine(ctx context.Context, name, what string, since time.Time, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := b.e.Command(ctx, "logs", "--follow", name)
	out, err := cmd.StderrPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), what) {
			return time.Since(since), nil
		}
	}
	return 0, fmt.Errorf("%s: no %q line: %w", name, what, context.Cause(ctx))
}

func (b *dockerBench) clusterCreate(ctx context.Context) (time.Duration, error) {
	args := []string{"create", dockerBenchCluster, "--agents", "2", "--image", benchImage, "--subnet", "10.216.0.0/24"}
	for _, a := range dockerd.Privileges {
		args = append(args, "--docker-arg", a)
	}
	t0 := time.Now()
	if _, err := b.runScript(ctx, args...); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func (b *dockerBench) runScript(ctx context.Context, args ...string) (string, error) {
	home, err := os.MkdirTemp("", "ketch-bench-home-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	cmd := exec.CommandContext(ctx, b.script, args...)
	cmd.Env = append(os.Environ(), "DOCKER="+b.e.Docker(), "HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ketch-docker-cluster.sh %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (b *dockerBench) containerPID(ctx context.Context, name string) (int, error) {
	out, err := b.e.Run(ctx, "inspect", "--format", "{{.State.Pid}}", name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// keepLogs copies the log of every node container left to a directory that outlives the
// bench, for a failed run.
func (b *dockerBench) keepLogs() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("/var/tmp", "ketch-bench-docker-logs-")
	if err != nil {
		return
	}
	out, _ := b.e.Run(ctx, "ps", "--all", "--format", "{{.Names}}")
	for _, name := range strings.Fields(out) {
		b.e.Command(ctx, "cp", name+":/var/lib/ketch/logs/ketch.log", filepath.Join(dir, name+".log")).Run()
		if logs, err := b.e.Command(ctx, "logs", name).CombinedOutput(); err == nil {
			os.WriteFile(filepath.Join(dir, name+".out"), logs, 0o644)
		}
	}
	b.logf("the node containers' logs are in %s", dir)
}

// cleanup removes what the bench made, whatever state it stopped in.
func (b *dockerBench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b.runScript(ctx, "delete", dockerBenchCluster)
	b.e.Run(ctx, "rm", "--force", "kb-single")
	if out, err := b.e.Run(ctx, "volume", "ls", "--quiet", "--filter", "name=kb-single"); err == nil {
		for _, v := range strings.Fields(out) {
			b.e.Run(ctx, "volume", "rm", v)
		}
	}
	b.e.Run(ctx, "network", "rm", benchNetwork)
	b.e.Run(ctx, "rmi", benchImage)
}

// pidsInCgroupOf lists every process of a container: those in its cgroup and below it, so the
// pods' processes too (they have PID namespaces of their own, but their cgroups are the node's,
// below the container's). Docker names the cgroup after the container's ID, with either cgroup
// driver.
func pidsInCgroupOf(id string) ([]int, error) {
	procs, err := harness.Procs()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.PID))
		if err == nil && strings.Contains(string(b), id) {
			pids = append(pids, p.PID)
		}
	}
	return pids, nil
}
