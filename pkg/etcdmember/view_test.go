package etcdmember

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

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

// view is a View with given endpoints that finds "Machines" at machines.
func (c *endpointsCluster) view(t *testing.T, given, machines []string) *View {
	t.Helper()
	ca, cert, key := c.net.ClientFiles()
	v := NewView(ViewConfig{
		Given:    given,
		Files:    TLSFiles{CA: ca, Cert: cert, Key: key},
		Client:   Config{DialTimeout: time.Second, CallTimeout: 3 * time.Second},
		Machines: func(context.Context) []string { return slices.Clone(machines) },
		Log:      testr.New(t),
	})
	t.Cleanup(v.Close)
	return v
}

// dialled is what the View's client dials; nil before it is made.
func (v *View) dialled() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cli == nil {
		return nil
	}
	return v.cli.Endpoints()
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

// TestGivenEndpointsAreKept: an endpoint given by --etcd-endpoints that is no Machine's
// address and no member's client URL is what the client dials, through the first member
// list read with quorum and every one after it.
func TestGivenEndpointsAreKept(t *testing.T) {
	ctx := t.Context()
	c := newEndpointsCluster(t)
	a := c.members[0]
	proxy := startProxy(t, a.IP, strings.TrimPrefix(a.ClientURL(), "https://"))
	given := []string{proxy.url()}
	v := c.view(t, given, c.dead)

	if _, err := v.Observe(ctx); err != nil {
		t.Fatalf("the first observation with the given endpoint %s: %v", given[0], err)
	}
	if got := v.dialled(); !slices.Equal(got, given) {
		t.Fatalf("after a member list the client dials %v, want the given %v", got, given)
	}
	before := proxy.bytes.Load()
	for range 3 {
		if _, err := v.Observe(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if after := proxy.bytes.Load(); after <= before {
		t.Fatalf("member lists after the first did not go through the given endpoint (%d bytes before, %d after)", before, after)
	}
}

// addLearnerWhenAllowed adds a learner at a fresh address, retrying while etcd refuses
// membership changes (it does until its members have been connected for 5 s).
func addLearnerWhenAllowed(t *testing.T, c *endpointsCluster, v *View) uint64 {
	t.Helper()
	ip, err := c.net.AllocateIP()
	if err != nil {
		t.Fatal(err)
	}
	var id uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		id, err = v.AddLearner(t.Context(), 1, "https://"+net.JoinHostPort(ip.String(), "2380"), nil)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestGivenEndpointsSurviveMembershipChanges: the member list read after a change does not
// move the client away from the given endpoints.
func TestGivenEndpointsSurviveMembershipChanges(t *testing.T) {
	c := newEndpointsCluster(t)
	a := c.members[0]
	proxy := startProxy(t, a.IP, strings.TrimPrefix(a.ClientURL(), "https://"))
	given := []string{proxy.url()}
	v := c.view(t, given, c.dead)
	id := addLearnerWhenAllowed(t, c, v)
	if err := v.Remove(t.Context(), 1, id, nil); err != nil {
		t.Fatal(err)
	}
	if got := v.dialled(); !slices.Equal(got, given) {
		t.Fatalf("after a membership change the client dials %v, want the given %v", got, given)
	}
}

// TestEndpointsFollowTheMembership: with nothing given the client starts on the Machines'
// addresses, moves to the voting members' client URLs once a member list is read with
// quorum, and drops a member's URL when the member is removed.
func TestEndpointsFollowTheMembership(t *testing.T) {
	ctx := t.Context()
	c := newEndpointsCluster(t)
	machines := []string{c.members[0].ClientURL(), c.dead[0]}
	v := c.view(t, nil, machines)
	if _, err := v.Observe(ctx); err != nil {
		t.Fatal(err)
	}
	members := etcdnet.ClientURLs(c.members)
	slices.Sort(members)
	if got := v.dialled(); !slices.Equal(got, members) {
		t.Fatalf("after a member list the client dials %v, want the members' %v", got, members)
	}
	learner := addLearnerWhenAllowed(t, c, v)
	if err := v.Remove(ctx, 1, learner, nil); err != nil {
		t.Fatal(err)
	}
	if got := v.dialled(); !slices.Equal(got, members) {
		t.Fatalf("after a learner came and went the client dials %v, want the members' %v", got, members)
	}
	gone := c.members[2]
	observed, err := v.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id uint64
	for _, m := range observed {
		if m.Name == gone.Name {
			id = m.ID
		}
	}
	if err := retryTransient(t, ctx, func() error { return v.Remove(ctx, 1, id, nil) }); err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(slices.Clone(members), func(ep string) bool { return ep == gone.ClientURL() })
	if got := v.dialled(); !slices.Equal(got, want) {
		t.Fatalf("after %s was removed the client dials %v, want %v", gone.Name, got, want)
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
		v := c.view(t, deadGiven, members)
		for range 2 {
			if _, err := v.Observe(t.Context()); err != nil {
				t.Fatalf("with the given endpoint down and the Machines up: %v", err)
			}
			if got := v.dialled(); !slices.Contains(got, deadGiven[0]) || !slices.Contains(got, members[0]) {
				t.Fatalf("the client dials %v: want the given endpoint kept and the Machines' added", got)
			}
		}
	})
	t.Run("nothing answers", func(t *testing.T) {
		v := c.view(t, deadGiven, c.dead[1:])
		_, err := v.Observe(t.Context())
		if err == nil || !strings.Contains(err.Error(), "every etcd endpoint failed") || !strings.Contains(err.Error(), c.dead[1]) {
			t.Fatalf("want an error naming the endpoints tried, got %v", err)
		}
	})
	t.Run("nothing given: the Machines are asked", func(t *testing.T) {
		v := c.view(t, nil, members)
		if _, err := v.Observe(t.Context()); err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(slices.Values(members))
		if got := v.dialled(); !slices.Equal(got, want) {
			t.Fatalf("the client dials %v, want the members' %v", got, want)
		}
	})
}

// TestChooseEndpoints runs the endpoint policy on plain inputs.
func TestChooseEndpoints(t *testing.T) {
	const (
		given  = "https://lb:2379"
		a, b   = "https://10.0.0.1:2379", "https://10.0.0.2:2379"
		m1, m2 = "https://10.0.1.1:2379", "https://10.0.1.2:2379"
	)
	voting := func(url string) Member {
		return Member{Name: url, Started: true, ClientURLs: []string{url}}
	}
	members := []Member{voting(b), voting(a), {Name: "l", Started: true, IsLearner: true, ClientURLs: []string{"https://10.0.0.9:2379"}}, {PeerURLs: []string{"https://10.0.0.8:2380"}}}
	machines := []string{m1, m2}
	for _, tc := range []struct {
		name string
		in   endpointInput
		want endpointChoice
	}{
		{"given endpoints are dialled whatever the member list says",
			endpointInput{Given: []string{given}, Members: members},
			endpointChoice{Dial: []string{given}, Base: []string{given}}},
		{"without given endpoints, the started voting members' client URLs, sorted",
			endpointInput{Members: members},
			endpointChoice{Dial: []string{a, b}, Base: []string{a, b}}},
		{"before any member list, the Machines' addresses",
			endpointInput{},
			endpointChoice{Dial: machines, Base: machines}},
		{"a list without a started voter's client URL keeps the previous choice",
			endpointInput{Members: []Member{{ID: 1}}, Base: []string{a}},
			endpointChoice{Dial: []string{a}, Base: []string{a}}},
		{"every given endpoint failed: the Machines' addresses are added beside them",
			endpointInput{Given: []string{given, m1}, Base: []string{given, m1}, Failed: []string{given, m1}},
			endpointChoice{Dial: []string{given, m1, m2}, Base: []string{given, m1}, Added: []string{m2}, Extra: []string{m2}}},
		{"the Machines' addresses added stay beside an unchanged base",
			endpointInput{Given: []string{given}, Members: members, Base: []string{given}, Added: []string{m1}},
			endpointChoice{Dial: []string{given, m1}, Base: []string{given}, Added: []string{m1}}},
		{"and go when the base changes",
			endpointInput{Members: members, Base: []string{b}, Added: []string{m1}},
			endpointChoice{Dial: []string{a, b}, Base: []string{a, b}}},
		{"every Machine's address already failed: nothing to add",
			endpointInput{Base: machines, Failed: machines},
			endpointChoice{Dial: machines, Base: machines}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Machines = func() []string { return slices.Clone(machines) }
			got := chooseEndpoints(tc.in)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("chooseEndpoints = %+v, want %+v", got, tc.want)
			}
		})
	}
}
