package etcdmember

import (
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

func TestParseSnapshotSends(t *testing.T) {
	text := `# HELP etcd_network_snapshot_send_inflights_total Total number of inflight snapshot sends
# TYPE etcd_network_snapshot_send_inflights_total gauge
etcd_network_snapshot_send_inflights_total{To="8e9e05c52164694d"} 1
etcd_network_snapshot_send_inflights_total{To="1a"} 0
etcd_network_snapshot_send_failures{To="1a"} 3
etcd_network_snapshot_send_success{To="1a"} 2
etcd_network_snapshot_receive_inflights_total{From="2b"} 1
etcd_network_peer_sent_bytes_total{To="1a"} 1234
`
	got, err := parseSnapshotSends(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]SnapshotSend{0x8e9e05c52164694d: {InFlight: true}, 0x1a: {Failures: 3, Successes: 2}}
	if len(got) != len(want) {
		t.Fatalf("got %+v; want %+v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("member %x: got %+v; want %+v", id, got[id], w)
		}
	}
	if _, err := parseSnapshotSends(strings.NewReader(`etcd_network_snapshot_send_failures{To="zz"} 1`)); err == nil {
		t.Error("a member ID that is not hex was accepted")
	}
}

// TestAViewSeesALearnerReceivingASnapshot: on a real TLS cluster whose leader keeps only a
// few raft entries after each snapshot, a learner joins over a peer link capped at 2 MiB/s
// and so receives a snapshot of about 12 MiB for several seconds, during which it neither
// answers nor shows as started. Once a reading through a View catches the leader's send under
// way (with the leader's database size), every reading of the learner, judged as the
// controller judges it (quorum.ReadSnapshot and quorum.LearnerHealth against the previous
// reading), shows it progressing until it has caught up, the time it applies the delivered
// snapshot and publishes itself included: no pass would count it as standing still, however
// short the learner start timeout.
func TestAViewSeesALearnerReceivingASnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 12 MiB and moves it over a slow link")
	}
	ctx := t.Context()
	cl := newClusterWith(t, ctx, func(c *etcdnet.MemberConfig) { c.SnapshotCount, c.SnapshotCatchUpEntries = 50, 10 }, "a", "b", "c")
	start := time.Now()
	cl.write(ctx, "data", 12<<20, 64<<10)
	cl.settle(ctx)
	t.Logf("written in %s", time.Since(start).Round(time.Millisecond))
	ca, cert, key := cl.net.ClientFiles()
	v := NewView(ViewConfig{Given: cl.client.Endpoints(), Files: TLSFiles{CA: ca, Cert: cert, Key: key},
		Client: Config{ProbeTimeout: testProbeTimeout, CallTimeout: testCallTimeout}, Log: testr.New(t)})
	t.Cleanup(v.Close)
	cl.net.Degrade("d", etcdnet.LinkFault{Rate: 2 << 20})
	learner, _ := cl.addLearner(ctx, 1, "d", nil)
	added := time.Now()

	var before *quorum.LearnerReading
	sawSend, delivered := false, false
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the learner did not catch up within 2 minutes")
		}
		observed, err := v.Observe(ctx)
		if err != nil {
			t.Logf("observe: %v", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		var o *Observed
		for i := range observed {
			if observed[i].ID == learner.ID {
				o = &observed[i]
			}
		}
		if o == nil {
			t.Fatalf("learner %x is not in the member list", learner.ID)
		}
		r := quorum.LearnerReading{Answered: o.Answered && o.Healthy, Index: o.Index, LeaderIndex: o.LeaderIndex}
		if s := o.Snapshot; s != nil {
			r.Snapshot = quorum.ReadSnapshot(quorum.SnapshotReading{InFlight: s.InFlight, Failures: s.Failures, Successes: s.Successes, Bytes: s.Bytes},
				r.Answered, before, time.Now())
			if s.InFlight {
				if s.Bytes < 10<<20 {
					t.Errorf("a send under way carries %d bytes; the leader's database holds more than 10 MiB", s.Bytes)
				}
				sawSend = true
			}
			delivered = delivered || r.Snapshot.Delivered
		}
		healthy, progressing := quorum.LearnerHealth(r, before)
		if r.LeaderIndex > 0 && r.Index >= r.LeaderIndex {
			break
		}
		// Until the leader starts the send, the learner stands still: the start timeout's
		// own case, seconds long. From then on every reading must show progress.
		if sawSend && !healthy && !progressing {
			t.Fatalf("a reading of the learner at index %d (leader %d, snapshot %+v) counts it as standing still", r.Index, r.LeaderIndex, r.Snapshot)
		}
		before = &r
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("caught up %s after the learner was added", time.Since(added).Round(time.Millisecond))
	if !sawSend {
		t.Fatal("no reading saw the leader's snapshot send under way")
	}
	t.Logf("a reading between the send's end and the learner's first answer saw it delivered: %v", delivered)
}
