package app

import (
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// endpointsCluster is a three-member TLS cluster and addresses that answer nothing, which
// stand for Machines the controller cannot reach.
type endpointsCluster struct {
	net     *etcdnet.Network
	members []*etcdnet.Member
	dead    []string
}

func newEndpointsCluster(t *testing.T) *endpointsCluster {
	t.Helper()
	n, err := etcdnet.NewNetwork(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	ms, err := n.Bootstrap(t.Context(), "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, m := range ms {
			m.Kill()
		}
	})
	c := &endpointsCluster{net: n, members: ms}
	for range 3 {
		ip, err := n.AllocateIP()
		if err != nil {
			t.Fatal(err)
		}
		c.dead = append(c.dead, "https://"+net.JoinHostPort(ip.String(), "2379"))
	}
	return c
}

// client is an etcdClient with given endpoints that finds "Machines" at machines.
func (c *endpointsCluster) client(t *testing.T, given, machines []string) *etcdClient {
	t.Helper()
	ca, cert, key := c.net.ClientFiles()
	e, err := newEtcdClient(given, ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	e.log = testr.New(t)
	e.cfg = etcdmember.Config{DialTimeout: time.Second, CallTimeout: 3 * time.Second}
	e.discover = func(context.Context) []string { return slices.Clone(machines) }
	t.Cleanup(e.Close)
	return e
}

func (e *etcdClient) dialled() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli == nil {
		return nil
	}
	return e.cli.Endpoints()
}

// countingProxy forwards TCP from a fresh port on ip to target and counts the bytes it
// carries: an endpoint that is neither a Machine's address nor a member's client URL, as a
// load balancer or a tunnel is.
type countingProxy struct {
	l     net.Listener
	bytes atomic.Int64
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, ip net.IP, target string) *countingProxy {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{l: l}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		p.wg.Wait()
	})
	p.wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(counter{dst, &p.bytes}, src)
				dst.Close()
				src.Close()
			}
			p.wg.Go(func() { pipe(out, in) })
			p.wg.Go(func() { pipe(in, out) })
		}
	})
	return p
}

type counter struct {
	w io.Writer
	n *atomic.Int64
}

func (c counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func (p *countingProxy) url() string { return "https://" + p.l.Addr().String() }

// A pass as the reconciler makes it: the Machines' addresses before any member list, an
// observation, then the members' client URLs.
func pass(t *testing.T, e *etcdClient, machines []string) ([]string, error) {
	t.Helper()
	e.SetEndpoints(machines)
	observed, err := e.Observe(t.Context())
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, m := range observed {
		urls = append(urls, m.ClientURLs...)
	}
	e.SetEndpoints(urls)
	return urls, nil
}

// TestGivenEndpointsAreKept: an endpoint given by --etcd-endpoints that is no Machine's
// address and no member's client URL is what the client dials, through the first pass, the
// member list that follows it, and membership changes.
func TestGivenEndpointsAreKept(t *testing.T) {
	ctx := t.Context()
	c := newEndpointsCluster(t)
	a := c.members[0]
	proxy := startProxy(t, a.IP, strings.TrimPrefix(a.ClientURL(), "https://"))
	given := []string{proxy.url()}
	e := c.client(t, given, c.dead)

	if _, err := pass(t, e, c.dead); err != nil {
		t.Fatalf("the first pass with the given endpoint %s: %v", given[0], err)
	}
	if got := e.dialled(); !slices.Equal(got, given) {
		t.Fatalf("after a pass the client dials %v, want the given %v", got, given)
	}
	before := proxy.bytes.Load()
	for range 3 {
		if _, err := e.Observe(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if after := proxy.bytes.Load(); after <= before {
		t.Fatalf("member lists after the first pass did not go through the given endpoint (%d bytes before, %d after)", before, after)
	}
}

// TestGivenEndpointsSurviveMembershipChanges: a change that moves the client's endpoints to
// the members' client URLs (as a removal does) leaves the given ones in place.
func TestGivenEndpointsSurviveMembershipChanges(t *testing.T) {
	ctx := t.Context()
	c := newEndpointsCluster(t)
	a := c.members[0]
	proxy := startProxy(t, a.IP, strings.TrimPrefix(a.ClientURL(), "https://"))
	given := []string{proxy.url()}
	e := c.client(t, given, c.dead)
	ip, err := c.net.AllocateIP()
	if err != nil {
		t.Fatal(err)
	}
	var id uint64
	// etcd refuses membership changes until its members have been connected for 5 s.
	deadline := time.Now().Add(30 * time.Second)
	for {
		id, err = e.AddLearner(ctx, 1, "https://"+net.JoinHostPort(ip.String(), "2380"), nil)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, 1, id, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.dialled(); !slices.Equal(got, given) {
		t.Fatalf("after a membership change the client dials %v, want the given %v", got, given)
	}
}

// TestEndpointsFallBackToMachines: when every known endpoint fails, the Machines' addresses
// are tried before giving up, and the given endpoint stays; when they fail too, the error
// says which endpoints were tried.
func TestEndpointsFallBackToMachines(t *testing.T) {
	c := newEndpointsCluster(t)
	members := etcdnet.ClientURLs(c.members)
	deadGiven := c.dead[:1]

	t.Run("every given endpoint down, the Machines answer", func(t *testing.T) {
		e := c.client(t, deadGiven, members)
		if _, err := e.Observe(t.Context()); err != nil {
			t.Fatalf("with the given endpoint down and the Machines up: %v", err)
		}
		if got := e.dialled(); !slices.Contains(got, deadGiven[0]) || !slices.Contains(got, members[0]) {
			t.Fatalf("the client dials %v: want the given endpoint kept and the Machines' added", got)
		}
	})
	t.Run("nothing answers", func(t *testing.T) {
		e := c.client(t, deadGiven, c.dead[1:])
		_, err := e.Observe(t.Context())
		if err == nil || !strings.Contains(err.Error(), "every etcd endpoint failed") || !strings.Contains(err.Error(), c.dead[1]) {
			t.Fatalf("want an error naming the endpoints tried, got %v", err)
		}
	})
	t.Run("nothing given: the Machines are asked", func(t *testing.T) {
		e := c.client(t, nil, members)
		if _, err := e.Observe(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := e.dialled(); !slices.Equal(got, members) {
			t.Fatalf("the client dials %v, want the Machines' %v", got, members)
		}
	})
}
