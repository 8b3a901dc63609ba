package etcdmember

import (
	"context"
	"fmt"
	"net"
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

func newCluster(t testing.TB, ctx context.Context, names ...string) *testCluster {
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
	ms, err := n.Bootstrap(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	ca, cert, key := n.ClientFiles()
	c, err := NewFromFiles(Config{Endpoints: etcdnet.ClientURLs(ms)}, TLSFiles{CA: ca, Cert: cert, Key: key})
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

// write puts total bytes in values of size bytes, retrying each put a few times as a real
// client does while a member is down.
func (c *testCluster) write(ctx context.Context, prefix string, total, size int) {
	c.t.Helper()
	val := strings.Repeat("x", size)
	for i := 0; i*size < total; i++ {
		var err error
		for range 5 {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = c.raw.Put(pctx, fmt.Sprintf("%s/%06d", prefix, i), val)
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			c.t.Fatalf("put %s/%06d: %v", prefix, i, err)
		}
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
	eventually(c.t, ctx, 20*time.Second, "add learner "+name, func() (bool, string) {
		var err error
		m, err = c.client.AddLearner(ctx, token, peerURL)
		if err != nil && !youngCluster(err) {
			c.t.Fatalf("add learner %s: %v", name, err)
		}
		return err == nil, errString(err)
	})
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
	em, err := c.net.StartMember(etcdnet.MemberConfig{Name: name, IP: ip, InitialCluster: initial, Existing: true})
	if err != nil {
		c.t.Fatalf("start learner %s: %v", name, err)
	}
	c.members[name] = em
	return m, em
}

// retryYoung runs fn until etcd stops refusing it for connections younger than 5 s.
func retryYoung(t testing.TB, ctx context.Context, what string, fn func() error) {
	t.Helper()
	eventually(t, ctx, 20*time.Second, what, func() (bool, string) {
		err := fn()
		if err != nil && !youngCluster(err) {
			t.Fatalf("%s: %v", what, err)
		}
		return err == nil, errString(err)
	})
}

// youngCluster is etcd's refusal to change membership until its members have been
// connected for a few seconds, as they have not right after a test starts them.
func youngCluster(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unhealthy cluster")
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

// waitCounts waits until the probed counts satisfy ok.
func (c *testCluster) waitCounts(ctx context.Context, what string, ok func(Counts) bool) []Member {
	c.t.Helper()
	var ms []Member
	eventually(c.t, ctx, 30*time.Second, what, func() (bool, string) {
		var err error
		ms, _, err = c.client.State(ctx)
		if err != nil {
			return false, err.Error()
		}
		return ok(Count(ms)), Count(ms).String()
	})
	return ms
}
