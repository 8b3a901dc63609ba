package etcdmember

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// BenchmarkLearnerPromotion measures, at three data sizes, the time from AddLearner to a
// successful promotion through WaitPromote (promote-ms), and in the same round the floor
// (floor-ms): the time until the learner's own endpoint reports its raft index at the
// leader's, polled every 5 ms over one open connection. excess-ms is their difference and
// ratio their quotient. A learner's endpoint answers only once the learner has caught up
// with the cluster as it was when it joined, so both are what a client can observe.
//
// Data is written once per size; each round adds a fresh learner, promotes it, removes it
// and deletes its data. The 50 MB and 200 MB sizes are skipped with -short.
func BenchmarkLearnerPromotion(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
		large bool
	}{
		{"1MB", 1 << 20, false},
		{"50MB", 50 << 20, true},
		{"200MB", 200 << 20, true},
	} {
		b.Run(size.name, func(b *testing.B) {
			if size.large && testing.Short() {
				b.Skip("large data sizes are skipped with -short")
			}
			ctx := b.Context()
			cl := newCluster(b, ctx, "a", "b", "c")
			cl.write(ctx, "data", size.bytes, 64<<10)
			cl.settle(ctx)
			var promote, floor time.Duration
			rounds := 0
			for b.Loop() {
				p, f := promotionRound(b, ctx, cl, rounds)
				promote, floor = promote+p, floor+f
				rounds++
			}
			perRound := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(rounds) }
			b.ReportMetric(perRound(promote), "promote-ms")
			b.ReportMetric(perRound(floor), "floor-ms")
			b.ReportMetric(perRound(promote-floor), "excess-ms")
			b.ReportMetric(float64(promote)/float64(floor), "ratio")
		})
	}
}

func promotionRound(b *testing.B, ctx context.Context, cl *testCluster, round int) (promote, floor time.Duration) {
	const token = 1
	start := time.Now()
	l, lm := cl.addLearner(ctx, token, fmt.Sprintf("learner-%d", round), nil)
	target, err := leaderIndex(ctx, cl)
	if err != nil {
		b.Fatal(err)
	}
	floorc := make(chan time.Duration, 1)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { floorc <- pollFloor(fctx, cl, lm.ClientURL(), target, start) }()
	if err := cl.client.WaitPromote(ctx, token, l.ID, DefaultPromoteInterval); err != nil {
		b.Fatalf("round %d: %v", round, err)
	}
	promote = time.Since(start)
	floor = <-floorc
	b.StopTimer()
	defer b.StartTimer()
	if err := retryTransient(b, ctx, func() error { return cl.client.RemoveMember(ctx, token, l.ID) }); err != nil {
		b.Fatalf("round %d: remove the promoted learner: %v", round, err)
	}
	lm.Kill()
	if err := os.RemoveAll(lm.DataDir()); err != nil {
		b.Fatal(err)
	}
	return promote, floor
}

// leaderIndex is the highest committed index the voting members report.
func leaderIndex(ctx context.Context, cl *testCluster) (uint64, error) {
	ms, hs, err := cl.client.State(ctx)
	if err != nil {
		return 0, err
	}
	var idx uint64
	for i, h := range hs {
		if h.Status != nil && !ms[i].IsLearner {
			idx = max(idx, h.Status.Index)
		}
	}
	return idx, nil
}

// pollFloor returns how long after start the endpoint reported a raft index of at least
// target. Its single connection waits for the learner to serve rather than failing.
func pollFloor(ctx context.Context, cl *testCluster, endpoint string, target uint64, start time.Time) time.Duration {
	tc, err := cl.net.ClientTLS()
	if err != nil {
		return 0
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, TLS: tc, Logger: zap.NewNop()})
	if err != nil {
		return 0
	}
	defer cli.Close()
	mt := clientv3.NewMaintenanceFromMaintenanceClient(pb.NewMaintenanceClient(cli.ActiveConnection()), cli)
	for ctx.Err() == nil {
		st, err := mt.Status(ctx, endpoint)
		if err == nil && st.RaftIndex >= target {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}
