package sections

import (
	"strings"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/harness"
)

func TestWriteStats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	killed := at(1000)
	// Writes every 100 ms until the kill; one in flight at the kill (sent at 950 ms) is
	// acknowledged at 1,050 ms, then nothing until 3,400 ms (sent at 3,300 ms), then on.
	sent := []time.Time{at(800), at(900), at(950), at(3300), at(3450)}
	acked := []time.Time{at(850), at(940), at(1050), at(3400), at(3500)}
	back, gap, n := WriteStats(sent, acked, killed)
	if back != 2400*time.Millisecond {
		t.Errorf("back = %s, want 2.4s (the write in flight at the kill does not count)", back)
	}
	if gap != 2350*time.Millisecond {
		t.Errorf("gap = %s, want 2.35s", gap)
	}
	if n != 3 {
		t.Errorf("n = %d, want 3", n)
	}
	if back, gap, n := WriteStats(sent[:2], acked[:2], killed); back != 0 || gap != 0 || n != 0 {
		t.Errorf("no write after the kill: back %s, gap %s, n %d", back, gap, n)
	}
}

func haFixture() HA {
	kill := func(victim string, writes, ctrl time.Duration) HAKill {
		return HAKill{Victim: victim, EtcdLeader: true, WritesBack: writes, WriteGap: writes + 100*time.Millisecond, Writes: 400, Failed: 2, TimedOut: 1,
			ProbeBack: writes / 2, ProbeGap: writes/2 + 100*time.Millisecond,
			LeaseTaken: ctrl - time.Second, PodsCreated: ctrl - 500*time.Millisecond, PodsScheduled: ctrl,
			SliceGone: 18 * time.Second, EndpointsGone: 18 * time.Second, Back: 40 * time.Second}
	}
	mem := func(node, store string, pss, anon uint64) HAMemory {
		return HAMemory{Node: node, Store: store, Mem: harness.NodeMemory{Ketch: harness.MemGroup{PSS: pss << 20, Anon: anon << 20, RSS: 2 * pss << 20, Procs: 1}}}
	}
	return HA{KetchBin: "/x/bin/ketch", Idle: time.Minute, PutClients: 16, PutsPerClient: 2000, ValueSize: 1024, PutRuns: 3, Limit: 90 * time.Second,
		WriterTimeout: 2 * time.Second, ProbeTimeout: 500 * time.Millisecond,
		Date: time.Unix(0, 0), Elapsed: 15 * time.Minute,
		Result: HAResult{
			Load: "0.5", LoadEnd: "2.0",
			Ups: []HAUp{{What: "lone bbolt server", Took: 15 * time.Second}, {What: "three servers", Took: 150 * time.Second}},
			Memory: []HAMemory{
				mem("bb-1", HAStoreBbolt, 400, 250),
				mem("bi-1", HAStoreEtcd1, 430, 290),
				mem("bh-1", HAStoreEtcd3, 300, 320),
				mem("bh-2", HAStoreEtcd3, 280, 300),
				mem("bh-3", HAStoreEtcd3, 290, 310),
			},
			Writes: []HAThroughput{
				{Store: HAWritesBbolt, Endpoint: "unix:///run/ketch-bb-1/datastore.sock", Runs: []HAPutRun{
					{Puts: 32000, Window: 4 * time.Second, P50: 2 * time.Millisecond, P99: 9 * time.Millisecond},
					{Puts: 32000, Window: 5 * time.Second, P50: 3 * time.Millisecond, P99: 12 * time.Millisecond},
					{Puts: 32000, Window: 3200 * time.Millisecond, P50: 1 * time.Millisecond, P99: 8 * time.Millisecond},
				}},
				{Store: HAWritesEtcd1, Endpoint: "https://10.99.93.11:2379", Runs: []HAPutRun{{Puts: 32000, Window: 8 * time.Second, P50: 4 * time.Millisecond, P99: 20 * time.Millisecond}}},
				{Store: HAWritesLeader, Endpoint: "https://10.99.91.11:2379", Runs: []HAPutRun{{Puts: 32000, Window: 16 * time.Second, P50: 8 * time.Millisecond, P99: 30 * time.Millisecond}}},
				{Store: HAWritesFollows, Endpoint: "https://10.99.91.12:2379", Runs: []HAPutRun{{Puts: 32000, Window: 20 * time.Second, P50: 10 * time.Millisecond, P99: 40 * time.Millisecond}}},
			},
			Kills: []HAKill{kill("bh-1", 1500*time.Millisecond, 17*time.Second), kill("bh-2", 2*time.Second, 16*time.Second), kill("bh-3", 1200*time.Millisecond, 19*time.Second)},
		}}
}

func TestHASection(t *testing.T) {
	s := haFixture().Section()
	for _, want := range []string{
		"<a id=\"ha\"></a>\n\n## HA: failover, memory and write throughput per store\n",
		"| writes succeed again: first acknowledged write sent after the kill (2 s client timeout) | 1.50 s (1.20–2.00 s) | ≤ 5 s | met |",
		"| … the same with a 0.5 s client timeout: writes again / longest pause | 0.75 s (0.60–1.00 s) / 0.85 s (0.70–1.10 s) | — | |",
		"| controllers act again: a Deployment scaled after the kill has all its new pods created and scheduled | 17.00 s (16.00–19.00 s) | ≤ 20 s | met |",
		"| … of which: another server holds kube-controller-manager's lease | 16.00 s (15.00–18.00 s) | — | |",
		"| 2 | bh-2 | controllers, etcd | 2.00 s | 2.10 s | 400 | 2 (1) | 1.00 s / 1.10 s | 15.00 s | 15.50 s | 16.00 s | 18.00 s | 18.00 s | 40.00 s |",
		"| bb-1 | bbolt, lone server | 400 MiB (250 MiB anon, 1 process) | 800 MiB | 400 MiB (0 pod processes) |",
		"### Write throughput: 16 clients × 2,000 puts of 1 KiB values, 3 runs per store",
		"| bbolt (lone server) | `unix:///run/ketch-bb-1/datastore.sock` | 8,000 (6,400–10,000) | 2.00 ms | 9.00 ms |",
		"| embedded etcd, 3 members, via the leader's member | `https://10.99.91.11:2379` | 2,000 | 8.00 ms | 30.0 ms |",
		// The summary: the median of the three servers by PSS is bh-3 (290 MiB, 310 MiB anon).
		"a lone server on it holds 40 MiB more of anonymous memory than on bbolt (290 MiB against 250 MiB); each of three servers 60 MiB more (310 MiB)",
		"- **bbolt** (the default, one server): the least memory: 250 MiB anonymous in the ketch process, 8,000 puts/s in this workload (p99 9.00 ms).",
		"one member takes 50 % of bbolt's puts/s; three members take 25 % of bbolt's puts/s through the leader's member and 20 % through a follower's",
		"writes were back within 2.00 s of the kill (median 1.50 s; with a 2 s client timeout, 0.75 s with 0.5 s) and the controllers acted again within 19.00 s (median 17.00 s)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if !strings.Contains(s, "lone bbolt server, up and Ready in 15.00 s; three servers, up and Ready in 150.00 s.") {
		t.Errorf("clusters line:\n%s", s)
	}
	if strings.Contains(s, "Quick smoke run") {
		t.Error("a full run is labelled quick")
	}
}

func TestHAVerdicts(t *testing.T) {
	r := haFixture()
	// One kill whose writes came back too late, and one whose pods were never scheduled.
	r.Result.Kills[0].WritesBack = 6 * time.Second
	r.Result.Kills[1].PodsScheduled = 0
	s := r.Section()
	for _, want := range []string{
		"| writes succeed again: first acknowledged write sent after the kill (2 s client timeout) | 2.00 s (1.20–6.00 s) | ≤ 5 s | **missed** |",
		"| controllers act again: a Deployment scaled after the kill has all its new pods created and scheduled | 17.00 s (17.00–19.00 s), 1 not within 90 s | ≤ 20 s | **missed** |",
		"| 2 | bh-2 | controllers, etcd | 2.00 s | 2.10 s | 400 | 2 (1) | 1.00 s / 1.10 s | 15.00 s | 15.50 s | — |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if got := (haStat{}).verdict(time.Second); got != "**missed**" {
		t.Errorf("no kill at all: verdict %q", got)
	}
}

func TestMoreOrLess(t *testing.T) {
	if got := moreOrLess(300<<20, 250<<20); got != "50 MiB more" {
		t.Errorf("moreOrLess = %q", got)
	}
	if got := moreOrLess(200<<20, 250<<20); got != "50 MiB less" {
		t.Errorf("moreOrLess = %q", got)
	}
}
