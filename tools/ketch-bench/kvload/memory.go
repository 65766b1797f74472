package kvload

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/harness"
)

// Memory samples the server's memory once the load phases are over and it has had a
// moment to settle, i.e. what a quiet cluster's datastore costs after a busy period. History
// is compacted first, as kube-apiserver does every few minutes, so both targets hold the same
// live keys however many revisions their speed let the timed phases write.
func Memory(ctx context.Context, env *Env, res *Result) error {
	cli, err := NewClient(env.Endpoint)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	st, err := cli.Status(ctx, env.Endpoint)
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
	case <-time.After(env.Sizes.Idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	m, err := harness.ReadMemStats(env.PID)
	if err != nil {
		return fmt.Errorf("read memory of pid %d: %w", env.PID, err)
	}
	res.add(
		BytesM("memory, idle after load: VmRSS", float64(m.RSS)),
		BytesM("memory, peak: VmHWM", float64(m.HWM)),
		BytesM("memory, idle after load: PSS", float64(m.PSS)),
	)
	env.Logf("memory: VmRSS %s, VmHWM %s, PSS %s", report.Bytes(float64(m.RSS)), report.Bytes(float64(m.HWM)), report.Bytes(float64(m.PSS)))
	return nil
}
