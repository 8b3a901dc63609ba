package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// TestLearnerReceivingALargeSnapshotIsNotRemoved: with a learner start timeout of 8 s, a
// replacement whose member joins over a peer link capped at 1 MiB/s receives a snapshot of
// more than 16 MiB (the leader has compacted its log), and so
// neither answers nor shows as started for about twice the timeout. The controller sees
// the leader's send under way, does not remove the learner, and the replacement completes
// with one learner added and promoted.
func TestLearnerReceivingALargeSnapshotIsNotRemoved(t *testing.T) {
	c, _ := startCluster(t, clusterSpec{settle: true,
		options: func(o *app.Options) { o.LearnerStartTimeout = 8 * time.Second },
		// A leader that snapshots every 100 entries keeps only a few after each, as a
		// long-running cluster has long compacted its log: a joining member gets a snapshot.
		cluster: func(o *framework.ClusterOptions) { o.SnapshotCount = 100 }})
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// 16 MiB of values for the snapshot to carry.
	start := time.Now()
	fill(t, cli, 256, 64<<10)
	t.Logf("filled in %s", time.Since(start).Round(time.Millisecond))
	name := "cluster-new-0"
	c.Net.Degrade(name, etcdnet.LinkFault{Rate: 1 << 20})
	if _, err := e2e.ReplaceSpec(t.Context(), e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-0"}, Replacements: []string{name}, MinVoters: 3, Timeout: time.Minute}); err != nil {
		t.Fatalf("%v; events of %s: %v", err, name, eventReasons(t, c, name))
	}
	eventually(t, func() bool { return countEvents(t, c, name, "LearnerPromoted", "") > 0 })
	if n := countEvents(t, c, name, "LearnerNotStarted", ""); n > 0 {
		t.Fatalf("the learner receiving its snapshot was removed %d times; events %v", n, eventReasons(t, c, name))
	}
	if n := countEvents(t, c, name, "LearnerAdded", ""); n != 1 {
		t.Fatalf("%d learners were added; want the one that received the snapshot; events %v", n, eventReasons(t, c, name))
	}
	added, promoted := eventTime(t, c, name, "LearnerAdded"), eventTime(t, c, name, "LearnerPromoted")
	t.Logf("learner added at %s, promoted %s later", added.Format(time.StampMilli), promoted.Sub(added))
	if promoted.Sub(added) < 12*time.Second {
		t.Errorf("the learner was promoted %s after it was added: the snapshot did not clearly outlast the 8 s timeout, so the test shows nothing", promoted.Sub(added))
	}
}

// fill puts n values of size bytes, 16 at a time.
func fill(t *testing.T, cli *clientv3.Client, n, size int) {
	t.Helper()
	val := strings.Repeat("v", size)
	keys := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range keys {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				_, err := cli.Put(ctx, fmt.Sprintf("/fill/%d/%06d", size, i), val)
				cancel()
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		keys <- i
	}
	close(keys)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("fill: %v", err)
	default:
	}
}

// eventTime is when the Machine's first Event with this reason happened.
func eventTime(t *testing.T, c *framework.Cluster, machine, reason string) time.Time {
	t.Helper()
	m, err := c.Machine(t.Context(), machine)
	if err != nil {
		t.Fatal(err)
	}
	var at time.Time
	for _, e := range events(t, machine) {
		if e.InvolvedObject.UID != m.UID || e.Reason != reason {
			continue
		}
		if ts := eventStamp(e); at.IsZero() || ts.Before(at) {
			at = ts
		}
	}
	return at
}

func eventStamp(e corev1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}
