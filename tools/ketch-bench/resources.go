package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
)

// memoryPhase samples the server's memory once the load phases are over and it has had a
// moment to settle, i.e. what a quiet cluster's datastore costs after a busy period. History
// is compacted first, as kube-apiserver does every few minutes, so both targets hold the same
// live keys however many revisions their speed let the timed phases write.
func memoryPhase(ctx context.Context, env *phaseEnv, res *targetResult) error {
	cli, err := newClient(env.srv.endpoint)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	st, err := cli.Status(ctx, env.srv.endpoint)
	if err != nil {
		cli.Close()
		return fmt.Errorf("status: %w", err)
	}
	_, err = cli.Compact(ctx, st.Header.Revision, clientv3.WithCompactPhysical())
	cli.Close()
	if err != nil {
		return fmt.Errorf("compact at revision %d: %w", st.Header.Revision, err)
	}
	select {
	case <-time.After(env.sizes.idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	m, err := readMemStats(env.srv.pid())
	if err != nil {
		return fmt.Errorf("read memory of pid %d: %w", env.srv.pid(), err)
	}
	res.add(
		bytesM("memory, idle after load: VmRSS", float64(m.rss)),
		bytesM("memory, peak: VmHWM", float64(m.hwm)),
		bytesM("memory, idle after load: PSS", float64(m.pss)),
	)
	env.logf("memory: VmRSS %s, VmHWM %s, PSS %s", fmtBytes(float64(m.rss)), fmtBytes(float64(m.hwm)), fmtBytes(float64(m.pss)))
	return nil
}

// dbSizePhase writes dbKeys×dbRounds updates, compacts at the current revision and reports
// how large the database is on disk and by the server's own account. The file is not
// defragmented: its size after compaction is what a cluster carries until someone does.
func dbSizePhase(ctx context.Context, env *phaseEnv, res *targetResult) error {
	sz := env.sizes
	updates := sz.dbKeys * sz.dbRounds
	p, err := newPool(env.srv.endpoint, sz.dbClients)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer p.close()

	start := time.Now()
	// Work items are handed out in order, so key i%dbKeys gets its updates round by round and
	// every key ends up with exactly dbRounds revisions.
	err = runCount(ctx, sz.dbClients, updates, func(ctx context.Context, w, i int) error {
		key := fmt.Sprintf("/registry/bench/db/obj-%04d", i%sz.dbKeys)
		_, err := p.get(w).KV.Put(ctx, key, string(env.payload.value(sz.putValue, i)))
		return err
	})
	if err != nil {
		return fmt.Errorf("write %d updates: %w", updates, err)
	}
	fillTime := time.Since(start)
	env.logf("dbsize: %d updates in %s (%.0f/s)", updates, fillTime.Round(100*time.Millisecond), float64(updates)/fillTime.Seconds())

	dbPath, err := env.target.dbFile(env.dataDir)
	if err != nil {
		return err
	}
	before, _, err := fileSize(dbPath)
	if err != nil {
		return err
	}

	cli := p.get(0)
	st, err := cli.Status(ctx, env.srv.endpoint)
	if err != nil {
		return fmt.Errorf("status before compaction: %w", err)
	}
	rev := st.Header.Revision
	// While the compaction runs, one client keeps writing: compaction must not stall writes.
	probeCtx, stopProbe := context.WithCancel(ctx)
	probe := make(chan []time.Duration, 1)
	go func() { probe <- probeWrites(probeCtx, cli, env.payload.value(sz.putValue, 0)) }()
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
	st, err = cli.Status(ctx, env.srv.endpoint)
	if err != nil {
		return fmt.Errorf("status after compaction: %w", err)
	}
	after, allocated, err := fileSize(dbPath)
	if err != nil {
		return err
	}

	label := fmt.Sprintf("db after %s updates", commas(updates))
	pct := percentiles(lats, 0.99, 1)
	res.add(
		latencyM(fmt.Sprintf("compaction of %s revisions: time", commas(int(rev-1))), compactTime),
		latencyM("put during that compaction: latency p99", pct[0]),
		latencyM("put during that compaction: latency max", pct[1]),
		bytesM(label+": file size before compaction", float64(before)),
		bytesM(label+" + compaction: file size", float64(after)),
		bytesM(label+" + compaction: file blocks allocated", float64(allocated)),
		bytesM(label+" + compaction: Status db_size", float64(st.DbSize)),
		bytesM(label+" + compaction: Status db_size_in_use", float64(st.DbSizeInUse)),
	)
	rel, _ := filepath.Rel(env.dataDir, dbPath)
	res.notes = append(res.notes, fmt.Sprintf("db file measured: <data-dir>/%s; fill of %s updates took %s", rel, commas(updates), fillTime.Round(100*time.Millisecond)))
	env.logf("dbsize: file %s before / %s after compaction at rev %d (%s allocated); db_size %s, in use %s",
		fmtBytes(float64(before)), fmtBytes(float64(after)), rev, fmtBytes(float64(allocated)), fmtBytes(float64(st.DbSize)), fmtBytes(float64(st.DbSizeInUse)))
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
