package kvload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
)

// DBSize writes dbKeys×dbRounds updates, compacts at the current revision and reports
// how large the database is on disk and by the server's own account. The file is not
// defragmented: its size after compaction is what a cluster carries until someone does.
func DBSize(ctx context.Context, env *Env, res *Result) error {
	sz := env.Sizes
	updates := sz.DBKeys * sz.DBRounds
	p, err := newPool(env.Endpoint, sz.DBClients)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer p.close()

	start := time.Now()
	// Work items are handed out in order, so key i%dbKeys gets its updates round by round and
	// every key ends up with exactly dbRounds revisions.
	err = runCount(ctx, sz.DBClients, updates, func(ctx context.Context, w, i int) error {
		key := fmt.Sprintf("/registry/bench/db/obj-%04d", i%sz.DBKeys)
		_, err := p.get(w).KV.Put(ctx, key, string(env.Payload.value(sz.PutValue, i)))
		return err
	})
	if err != nil {
		return fmt.Errorf("write %d updates: %w", updates, err)
	}
	fillTime := time.Since(start)
	env.Logf("dbsize: %d updates in %s (%.0f/s)", updates, fillTime.Round(100*time.Millisecond), float64(updates)/fillTime.Seconds())

	dbPath, err := env.DBFile(env.DataDir)
	if err != nil {
		return err
	}
	before, _, err := fileSize(dbPath)
	if err != nil {
		return err
	}

	cli := p.get(0)
	st, err := cli.Status(ctx, env.Endpoint)
	if err != nil {
		return fmt.Errorf("status before compaction: %w", err)
	}
	rev := st.Header.Revision
	// While the compaction runs, one client keeps writing: compaction must not stall writes.
	probeCtx, stopProbe := context.WithCancel(ctx)
	probe := make(chan []time.Duration, 1)
	go func() { probe <- probeWrites(probeCtx, cli, env.Payload.value(sz.PutValue, 0)) }()
	compactStart := time.Now()
	_, err = cli.Compact(ctx, rev, clientv3.WithCompactPhysical())
	compactTime := time.Since(compactStart)
	stopProbe()
	lats := <-probe
	if err != nil {
		return fmt.Errorf("compact at revision %d: %w", rev, err)
	}
	// Let the backend commit the compaction (etcd batches commits every 100ms) before
	// reading sizes, so db_size_in_use reflects the freed pages.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	st, err = cli.Status(ctx, env.Endpoint)
	if err != nil {
		return fmt.Errorf("status after compaction: %w", err)
	}
	after, allocated, err := fileSize(dbPath)
	if err != nil {
		return err
	}

	label := fmt.Sprintf("db after %s updates", report.Commas(updates))
	pct := stats.Percentiles(lats, 0.99, 1)
	res.add(
		LatencyM(fmt.Sprintf("compaction of %s revisions: time", report.Commas(int(rev-1))), compactTime),
		LatencyM("put during that compaction: latency p99", pct[0]),
		LatencyM("put during that compaction: latency max", pct[1]),
		BytesM(label+": file size before compaction", float64(before)),
		BytesM(label+" + compaction: file size", float64(after)),
		BytesM(label+" + compaction: file blocks allocated", float64(allocated)),
		BytesM(label+" + compaction: Status db_size", float64(st.DbSize)),
		BytesM(label+" + compaction: Status db_size_in_use", float64(st.DbSizeInUse)),
	)
	rel, _ := filepath.Rel(env.DataDir, dbPath)
	res.Notes = append(res.Notes, fmt.Sprintf("db file measured: <data-dir>/%s; fill of %s updates took %s", rel, report.Commas(updates), fillTime.Round(100*time.Millisecond)))
	env.Logf("dbsize: file %s before / %s after compaction at rev %d (%s allocated); db_size %s, in use %s",
		report.Bytes(float64(before)), report.Bytes(float64(after)), rev, report.Bytes(float64(allocated)), report.Bytes(float64(st.DbSize)), report.Bytes(float64(st.DbSizeInUse)))
	return nil
}

// probeWrites puts one key over and over until ctx ends and returns each put's latency.
func probeWrites(ctx context.Context, cli *kubernetes.Client, value []byte) []time.Duration {
	var lats []time.Duration
	for ctx.Err() == nil {
		start := time.Now()
		if _, err := cli.KV.Put(ctx, "/registry/bench/db/probe", string(value)); err != nil {
			break
		}
		lats = append(lats, time.Since(start))
	}
	return lats
}

// fileSize returns the apparent size and the bytes actually allocated on disk. bbolt grows
// its file in large steps (16 MiB by default) that may stay sparse, so the two can differ a lot.
func fileSize(path string) (apparent, allocated int64, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("db file: %w", err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		allocated = sys.Blocks * 512
	}
	return st.Size(), allocated, nil
}
