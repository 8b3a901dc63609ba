package framework_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/quorumguard/quorumguard/test/framework"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

func TestLinearizabilityModel(t *testing.T) {
	const k = "/k"
	put := func(c int, v string, call, ret int64) framework.Op {
		return framework.Op{Client: c, Kind: "put", Key: k, Value: v, Call: call, Return: ret}
	}
	get := func(c int, got string, call, ret int64) framework.Op {
		return framework.Op{Client: c, Kind: "get", Key: k, Got: got, Call: call, Return: ret}
	}
	for _, tc := range []struct {
		name string
		ops  []framework.Op
		want porcupine.CheckResult
	}{
		{"a read after a write sees it", []framework.Op{put(0, "a", 0, 10), get(1, "a", 11, 20)}, porcupine.Ok},
		{"a read after a write that sees the old value is stale", []framework.Op{put(0, "a", 0, 10), put(0, "b", 11, 20), get(1, "a", 21, 30)}, porcupine.Illegal},
		{"a read concurrent with a write may see either", []framework.Op{put(0, "a", 0, 10), put(0, "b", 11, 20), get(1, "a", 15, 30)}, porcupine.Ok},
		{"a write with unknown outcome may have happened", []framework.Op{{Client: 0, Kind: "put", Key: k, Value: "a", Unknown: true, Call: 0, Return: 1 << 62}, get(1, "a", 50, 60)}, porcupine.Ok},
		{"a value nobody wrote is illegal", []framework.Op{put(0, "a", 0, 10), get(1, "z", 11, 20)}, porcupine.Illegal},
		{"a cas that reports success against the wrong value is illegal", []framework.Op{put(0, "a", 0, 10),
			{Client: 1, Kind: "cas", Key: k, Expect: "b", Value: "c", OK: true, Call: 11, Return: 20}}, porcupine.Illegal},
		{"a value read after an unknown write that nobody saw is still stale", []framework.Op{put(0, "a", 0, 10), put(0, "b", 11, 20),
			{Client: 2, Kind: "put", Key: k, Value: "x", Unknown: true, Call: 12, Return: 1 << 62}, get(1, "a", 21, 30)}, porcupine.Illegal},
		{"an unknown write someone read is kept, and may have happened", []framework.Op{put(0, "a", 0, 10),
			{Client: 2, Kind: "put", Key: k, Value: "x", Unknown: true, Call: 12, Return: 1 << 62}, get(1, "x", 21, 30), get(1, "x", 31, 40)}, porcupine.Ok},
		{"a deleted key reads as absent", []framework.Op{put(0, "a", 0, 10), {Client: 0, Kind: "delete", Key: k, Call: 11, Return: 20}, get(1, "", 21, 30)}, porcupine.Ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := framework.CheckLinearizable(tc.ops, t.TempDir(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Result != tc.want {
				t.Fatalf("check = %s, want %s", rep.Result, tc.want)
			}
		})
	}
}

// TestHistoryCatchesStaleReads: a member cut off from its peers serves stale data to a
// serializable get. Recorded through it, the history is flagged, and written out with its
// visualisation; the same faults with linearizable gets are not.
func TestHistoryCatchesStaleReads(t *testing.T) {
	for _, serializable := range []bool{true, false} {
		t.Run(map[bool]string{true: "serializable gets", false: "linearizable gets"}[serializable], func(t *testing.T) {
			_, ms, tc := etcdnet.StartTest(t, "m0", "m1", "m2")
			eps := etcdnet.ClientURLs(ms)
			// One key: every write the others make during the partition leaves the cut-off
			// member's copy behind, so a read through it after the first such write is stale.
			h := framework.StartHistory(t.Context(), framework.HistoryOptions{Endpoints: func() []string { return eps }, TLS: tc,
				Clients: 3, Keys: 1, Serializable: serializable, Seed: 7})
			time.Sleep(time.Second)
			// The partition lasts until client 2 (whose endpoint is the cut-off member) has read
			// a value after a write through the others was acknowledged: that read is stale
			// for certain. An empty read is not counted, as an unfinished delete of client 2's
			// could explain it; the partition is then tried again.
			// Linearizable gets through the cut-off member fail: one 4 s partition suffices.
			certain, tries, hold := false, 4, 10*time.Second
			if !serializable {
				tries, hold = 1, 4*time.Second
			}
			for try := 0; try < tries && !certain; try++ {
				at := h.Now()
				ms[2].Partition()
				deadline := time.Now().Add(hold)
				for !certain && time.Now().Before(deadline) {
					time.Sleep(100 * time.Millisecond)
					certain = staleReadCertain(h.Ops(), at)
				}
				ms[2].Heal()
				time.Sleep(time.Second)
			}
			if serializable && !certain {
				t.Fatal("client 2 never read through the cut-off member after an acknowledged write: the test shows nothing")
			}
			out := t.TempDir()
			rep, err := h.Stop(out, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(rep)
			if rep.Operations < 100 {
				t.Fatalf("only %d operations recorded", rep.Operations)
			}
			if !serializable {
				if rep.Result != porcupine.Ok {
					t.Fatalf("linearizable gets through a partition: %s", rep)
				}
				return
			}
			if rep.Result != porcupine.Illegal {
				t.Fatalf("stale serializable reads through a partitioned member were not flagged: %s", rep)
			}
			for _, f := range []string{"history.json", "history.html"} {
				if st, err := os.Stat(filepath.Join(rep.Dir, f)); err != nil || st.Size() == 0 {
					t.Fatalf("%s not written: %v", f, err)
				}
			}
		})
	}
}

// staleReadCertain says whether, since at, client 0 or 1 had a put or cas acknowledged and
// client 2 then read a value that is not empty.
func staleReadCertain(ops []framework.Op, at int64) bool {
	var acked int64 = -1
	for _, op := range ops {
		if op.Client != 2 && op.Call > at && !op.Unknown && (op.Kind == "put" || op.Kind == "cas" && op.OK) && (acked < 0 || op.Return < acked) {
			acked = op.Return
		}
	}
	if acked < 0 {
		return false
	}
	for _, op := range ops {
		if op.Client == 2 && op.Kind == "get" && op.Call > acked && op.Got != "" {
			return true
		}
	}
	return false
}

// TestHistoriesInOneCluster: a second history on a cluster an earlier one wrote to is
// checked on its own keys; on the earlier one's keys its first reads would return values
// it never wrote, and be flagged.
func TestHistoriesInOneCluster(t *testing.T) {
	_, ms, tc := etcdnet.StartTest(t, "m0")
	eps := etcdnet.ClientURLs(ms)
	for i := range 2 {
		h := framework.StartHistory(t.Context(), framework.HistoryOptions{Endpoints: func() []string { return eps }, TLS: tc, Clients: 2, Seed: 3})
		time.Sleep(time.Second)
		rep, err := h.Stop(t.TempDir(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Operations < 20 || rep.Result != porcupine.Ok {
			t.Fatalf("history %d: %s; want a linearizable history of at least 20 operations", i+1, rep)
		}
	}
}
