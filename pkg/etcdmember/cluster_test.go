package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// testCluster is a real etcd cluster on loopback with mutual TLS, a Client for it, and a
// plain etcd client for writing data.
type testCluster struct {
	t       testing.TB
	net     *etcdnet.Network
	members map[string]*etcdnet.Member
	client  *Client
	raw     *clientv3.Client
	started time.Time
}

// Test clusters tick at etcd's defaults rather than etcdnet's quicker ones, and the Client
// waits longer than its defaults: the machines running these tests are shared and at
// times so loaded that shorter limits turn into spurious elections and timeouts.
const (
	testTickMs, testElectionMs = 100, 1000
	testProbeTimeout           = 5 * time.Second
	testCallTimeout            = 10 * time.Second
)

func newCluster(t testing.TB, ctx context.Context, names ...string) *testCluster {
	t.Helper()
	return newClusterWith(t, ctx, nil, names...)
}

// newClusterWith is newCluster with each bootstrap member's configuration adjusted.
func newClusterWith(t testing.TB, ctx context.Context, adjust func(*etcdnet.MemberConfig), names ...string) *testCluster {
	t.Helper()
	n, err := etcdnet.NewNetwork(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	// A graceful stop can wait seconds on a leadership transfer, and never returns for a
	// member that has not become ready; a hard stop does neither.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, m := range n.Members() {
			wg.Go(m.Kill)
		}
		wg.Wait()
	})
	ips := map[string]net.IP{}
	initial := map[string]string{}
	for _, name := range names {
		ip, err := n.AllocateIP()
		if err != nil {
			t.Fatal(err)
		}
		ips[name], initial[name] = ip, "https://"+net.JoinHostPort(ip.String(), fmt.Sprint(etcdnet.PeerPort))
	}
	var ms []*etcdnet.Member
	for _, name := range names {
		cfg := etcdnet.MemberConfig{Name: name, IP: ips[name], InitialCluster: initial, TickMs: testTickMs, ElectionMs: testElectionMs}
		if adjust != nil {
			adjust(&cfg)
		}
		m, err := n.StartMember(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		if err := m.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ca, cert, key := n.ClientFiles()
	c, err := NewFromFiles(Config{Endpoints: etcdnet.ClientURLs(ms), ProbeTimeout: testProbeTimeout, CallTimeout: testCallTimeout},
		TLSFiles{CA: ca, Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc, err := n.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientv3.New(clientv3.Config{Endpoints: etcdnet.ClientURLs(ms), TLS: tc, DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	cl := &testCluster{t: t, net: n, members: map[string]*etcdnet.Member{}, client: c, raw: raw, started: time.Now()}
	for _, m := range ms {
		cl.members[m.Name] = m
	}
	return cl
}

// settle waits until etcd accepts membership changes: it refuses them until its members
// have been connected for 5 s.
func (c *testCluster) settle(ctx context.Context) {
	select {
	case <-time.After(time.Until(c.started.Add(5500 * time.Millisecond))):
	case <-ctx.Done():
	}
}

// id is the etcd ID of the member named name.
func (c *testCluster) id(name string) uint64 {
	c.t.Helper()
	id := c.members[name].ID()
	if id == 0 {
		c.t.Fatalf("member %s has no ID: not running", name)
	}
	return id
}

// forget points the client away from removed member id, as a caller that follows the
// membership does (a View does it itself): a Client keeps its endpoints, and a removed
// member that still runs answers with an error until it stops.
func (c *testCluster) forget(id uint64) {
	for _, m := range c.members {
		if m.ID() == id {
			c.client.SetEndpoints(slices.DeleteFunc(c.client.Endpoints(), func(ep string) bool { return ep == m.ClientURL() })...)
		}
	}
}

// write puts total bytes in values of size bytes, four puts at a time, retrying each put a
// few times as a real client does while a member is down.
func (c *testCluster) write(ctx context.Context, prefix string, total, size int) {
	c.t.Helper()
	val := strings.Repeat("x", size)
	keys := make(chan string)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for k := range keys {
				var err error
				for range 5 {
					pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, err = c.raw.Put(pctx, k, val)
					cancel()
					if err == nil {
						break
					}
				}
				if err != nil {
					errs <- fmt.Errorf("put %s: %w", k, err)
					return
				}
			}
		})
	}
	for i := 0; i*size < total; i++ {
		select {
		case keys <- fmt.Sprintf("%s/%06d", prefix, i):
		case err := <-errs:
			close(keys)
			wg.Wait()
			c.t.Fatal(err)
		}
	}
	close(keys)
	wg.Wait()
	select {
	case err := <-errs:
		c.t.Fatal(err)
	default:
	}
}

// burst puts n small values at once, so that they take n raft entries quickly even while
// the leader is slow.
func (c *testCluster) burst(ctx context.Context, prefix string, n int) {
	c.t.Helper()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := c.raw.Put(pctx, fmt.Sprintf("%s/%d", prefix, i), "v")
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			c.t.Fatalf("burst put: %v", err)
		}
	}
}

// addLearner adds a learner through the Client and starts an etcd member for it at ip, or at
// a fresh loopback address when ip is nil.
func (c *testCluster) addLearner(ctx context.Context, token uint64, name string, ip net.IP) (Member, *etcdnet.Member) {
	c.t.Helper()
	if ip == nil {
		var err error
		if ip, err = c.net.AllocateIP(); err != nil {
			c.t.Fatal(err)
		}
	}
	peerURL := "https://" + net.JoinHostPort(ip.String(), fmt.Sprint(etcdnet.PeerPort))
	var m Member
	if err := retryTransient(c.t, ctx, func() error {
		var err error
		m, err = c.client.AddLearner(ctx, token, peerURL)
		return err
	}); err != nil {
		c.t.Fatalf("add learner %s: %v", name, err)
	}
	members, err := c.client.Members(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	initial := map[string]string{name: peerURL}
	for _, o := range members {
		if o.Started {
			initial[o.Name] = o.PeerURLs[0]
		}
	}
	em, err := c.net.StartMember(etcdnet.MemberConfig{Name: name, IP: ip, InitialCluster: initial, Existing: true,
		TickMs: testTickMs, ElectionMs: testElectionMs})
	if err != nil {
		c.t.Fatalf("start learner %s: %v", name, err)
	}
	c.members[name] = em
	return m, em
}

// retryTransient runs fn until it returns nil or an error that waiting would not cure, for
// up to 30 s, and returns that. Curable: a timeout or lost connection, a leader change,
// quorum lost for the moment, and etcd refusing changes until its members have been
// connected for 5 s.
func retryTransient(t testing.TB, ctx context.Context, fn func() error) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := fn()
		if err == nil || !transient(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		t.Logf("retrying after: %v", err)
		time.Sleep(200 * time.Millisecond)
	}
}

func transient(err error) bool {
	var (
		te *TimeoutError
		re *UnreachableError
		ue *UnsafeChangeError
		ce *CallError
	)
	switch {
	case errors.As(err, &te), errors.As(err, &re):
		return true
	case errors.As(err, &ue):
		return ue.Before.Healthy < ue.Before.Quorum || strings.HasPrefix(ue.Reason, "etcd refused")
	case errors.As(err, &ce):
		return strings.Contains(ce.Err.Error(), "leader")
	}
	return false
}

// eventually polls cond every 20 ms until it holds or d passes.
func eventually(t testing.TB, ctx context.Context, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not within %s; last: %s", what, d, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func names(members []Member) string {
	var out []string
	for _, m := range members {
		s := m.Name
		if m.IsLearner {
			s += "(learner)"
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// waitHealth waits until a probe finds member id healthy, or unhealthy, and returns the
// state then.
func (c *testCluster) waitHealth(ctx context.Context, id uint64, healthy bool) ([]Member, []Health) {
	c.t.Helper()
	var ms []Member
	var hs []Health
	eventually(c.t, ctx, 30*time.Second, fmt.Sprintf("member %x healthy=%v", id, healthy), func() (bool, string) {
		var err error
		ms, hs, err = c.client.State(ctx)
		if err != nil {
			return false, err.Error()
		}
		for i, m := range ms {
			if m.ID == id {
				return m.Healthy == healthy, fmt.Sprintf("%s: %v", m, hs[i].Err)
			}
		}
		return false, "not listed: " + names(ms)
	})
	return ms, hs
}

// waitMembers waits until the probed members satisfy ok.
func (c *testCluster) waitMembers(ctx context.Context, what string, ok func([]Member) bool) []Member {
	c.t.Helper()
	var ms []Member
	eventually(c.t, ctx, 30*time.Second, what, func() (bool, string) {
		var err error
		ms, _, err = c.client.State(ctx)
		if err != nil {
			return false, err.Error()
		}
		return ok(ms), Count(ms).String()
	})
	return ms
}
