package etcdnet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

func newClient(t *testing.T, n *etcdnet.Network, endpoints ...string) *clientv3.Client {
	t.Helper()
	tc, err := n.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tc, DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rev(t *testing.T, c *clientv3.Client, endpoint string) (int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	st, err := c.Status(ctx, endpoint)
	if err != nil {
		return 0, err
	}
	return int64(st.RaftIndex), nil
}

func TestFaults(t *testing.T) {
	n, err := etcdnet.NewNetwork(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	ms, err := n.Bootstrap(t.Context(), "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, n, etcdnet.ClientURLs(ms)...)
	// put retries as a real client does: a request that went to a frozen or cut-off member
	// times out, the next one goes elsewhere.
	put := func(k string) error {
		var err error
		for range 5 {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			_, err = c.Put(ctx, k, "v")
			cancel()
			if err == nil {
				return nil
			}
		}
		return err
	}
	if err := put("k0"); err != nil {
		t.Fatalf("put on a fresh three-member cluster: %v", err)
	}

	t.Run("a partitioned member falls behind and catches up when healed", func(t *testing.T) {
		ms[2].Partition()
		t.Cleanup(ms[2].Heal)
		before, err := rev(t, c, ms[2].ClientURL())
		if err != nil {
			t.Fatalf("a partitioned member should still answer clients: %v", err)
		}
		for i := range 20 {
			if err := put("p" + string(rune('a'+i))); err != nil {
				t.Fatalf("put with one member partitioned: %v", err)
			}
		}
		after, _ := rev(t, c, ms[2].ClientURL())
		lead, err := rev(t, c, ms[0].ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		if after >= lead || after > before+1 {
			t.Fatalf("partitioned member index %d (was %d) should stay behind the others' %d", after, before, lead)
		}
		ms[2].Heal()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, _ := rev(t, c, ms[2].ClientURL())
			lead, _ := rev(t, c, ms[0].ClientURL())
			if got >= lead && lead > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("healed member index %d never reached %d", got, lead)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("a frozen member stops answering and keeps its sockets", func(t *testing.T) {
		ms[1].Freeze()
		t.Cleanup(ms[1].Thaw)
		_, err := rev(t, c, ms[1].ClientURL())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("status of a frozen member: want a deadline error, got %v", err)
		}
		if err := put("frozen"); err != nil {
			t.Fatalf("two of three members should still take writes: %v", err)
		}
		ms[1].Thaw()
		if _, err := rev(t, c, ms[1].ClientURL()); err != nil {
			t.Fatalf("thawed member should answer: %v", err)
		}
	})

	t.Run("a degraded member's peer links delay every round trip through it", func(t *testing.T) {
		// A linearizable read through b needs a round trip between b and the leader (or, when b
		// leads, between b and a quorum), all over b's peer links: at least twice the latency.
		// Only the lower bound is asserted; a loaded machine only adds to it.
		single := newClient(t, n, ms[1].ClientURL())
		read := func(step string) time.Duration {
			t.Helper()
			start := time.Now()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if _, err := single.Get(ctx, "k0"); err != nil {
				t.Fatalf("read through b (%s) after %s: %v", step, time.Since(start), err)
			}
			return time.Since(start)
		}
		read("undegraded")
		ms[1].Degrade(etcdnet.LinkFault{Latency: 150 * time.Millisecond})
		t.Cleanup(ms[1].Restore)
		if got := n.Faults(); got != "b peer links with 150ms latency and 0% loss" {
			t.Fatalf("Faults() = %q", got)
		}
		if d := read("150 ms"); d < 300*time.Millisecond {
			t.Fatalf("a read through b took %s with 150 ms on each of its peer links; want at least 300 ms", d)
		}
		// Every segment lost: each one waits a retransmission timeout as well.
		ms[1].Degrade(etcdnet.LinkFault{Latency: 50 * time.Millisecond, Loss: 1})
		if d := read("50 ms, all lost"); d < 2*(50*time.Millisecond+etcdnet.RetransmitDelay) {
			t.Fatalf("a read through b took %s with 50 ms and 100%% loss; want at least %s", d, 2*(50*time.Millisecond+etcdnet.RetransmitDelay))
		}
		ms[1].Restore()
		if got := n.Faults(); got != "" {
			t.Fatalf("Faults() after Restore = %q", got)
		}
		if err := put("restored"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a member whose disk stalls answers Status but no linearizable read, and the rest keep quorum", func(t *testing.T) {
		single := newClient(t, n, ms[2].ClientURL())
		ms[2].StallDisk()
		t.Cleanup(ms[2].Resume)
		if got := n.Faults(); got != "c disk stalled" {
			t.Fatalf("Faults() = %q", got)
		}
		if _, err := rev(t, c, ms[2].ClientURL()); err != nil {
			t.Fatalf("a stalled member should still answer Status: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := single.Get(ctx, "k0")
		cancel()
		if err == nil {
			t.Fatal("a linearizable read through a member whose disk stalls succeeded")
		}
		if err := put("stalled"); err != nil {
			t.Fatalf("two of three members should still take writes: %v", err)
		}
		ms[2].Resume()
		ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := single.Get(ctx, "stalled"); err != nil {
			t.Fatalf("a linearizable read through the member once its disk resumed: %v", err)
		}
	})

	t.Run("a killed member refuses connections and the rest keep quorum", func(t *testing.T) {
		ms[0].Kill()
		if ms[0].Running() {
			t.Fatal("killed member still reports running")
		}
		if _, err := rev(t, c, ms[0].ClientURL()); err == nil {
			t.Fatal("status of a killed member succeeded")
		}
		if err := put("after-kill"); err != nil {
			t.Fatalf("two of three members should still take writes: %v", err)
		}
		if err := ms[0].Restart(); err != nil {
			t.Fatal(err)
		}
		if err := ms[0].WaitReady(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}
