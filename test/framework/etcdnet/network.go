// Package etcdnet runs real etcd members (go.etcd.io/etcd/server/v3/embed) on loopback
// addresses, with mutual TLS everywhere, and puts a small proxy in front of each member so
// tests can kill, freeze or partition one member the way a broken machine would.
//
// Each member listens on internal ports; what other members and clients see are its
// advertised URLs, https://<ip>:2379 and https://<ip>:2380, served by the proxies:
//   - the client proxy passes TLS through untouched; frozen, it holds every byte;
//   - the peer proxy terminates TLS, learns which member is calling from the client
//     certificate's common name, and re-dials the member. Partitioned, it refuses traffic from
//     and to the member; frozen, it holds it.
//
// It never decides anything about membership: that is for the code under test.
package etcdnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/quorumguard/quorumguard/test/framework/pki"
)

const (
	// ClientPort and PeerPort are the advertised ports, as on a real control-plane host.
	ClientPort = 2379
	PeerPort   = 2380
	// internal ports the embedded member really listens on.
	memberClientPort = 22379
	memberPeerPort   = 22380
)

// Network is the set of members of one test cluster and the fault state between them.
type Network struct {
	Dir string
	CA  *pki.CA
	// QuotaBackendBytes is the quota of a member whose MemberConfig gives none; 2 GiB when zero.
	QuotaBackendBytes int64
	// SnapshotCount and SnapshotCatchUpEntries are those of a member whose MemberConfig gives
	// none (see MemberConfig); etcd's defaults when zero.
	SnapshotCount, SnapshotCatchUpEntries uint64

	caFile    string
	client    pki.Pair
	proxyCert tls.Certificate
	pool      *x509.CertPool
	ipPrefix  [3]byte
	reserved  net.Listener // held on <prefix>.1:2380 until Close; see reservePrefix
	nextHost  int
	mu        sync.Mutex
	members   map[string]*Member
	frozen    map[string]bool
	stalled   map[string]bool
	partition map[string]bool
	// cut are the peer links cut between two members only (see Member.Cut), keyed by the
	// two names in order.
	cut        map[[2]string]bool
	degraded   map[string]LinkFault
	changed    chan struct{}
	closedOnce sync.Once
}

// NewNetwork makes a CA and a client certificate under dir and reserves a loopback /24 for
// the machines of this network until Close, so that networks in one test process, or in test
// packages running side by side, never share addresses.
func NewNetwork(dir string) (*Network, error) {
	return newNetwork(dir, randomPrefix)
}

// randomPrefix draws a candidate 127.x.y.0/24.
func randomPrefix() [3]byte { return [3]byte{127, byte(10 + rand.IntN(240)), byte(rand.IntN(256))} }

// newNetwork is NewNetwork drawing its candidate prefixes from candidate.
func newNetwork(dir string, candidate func() [3]byte) (*Network, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := pki.NewCA("quorumguard-test-etcd-ca")
	if err != nil {
		return nil, err
	}
	n := &Network{Dir: dir, CA: ca, pool: ca.Pool(), members: map[string]*Member{},
		frozen: map[string]bool{}, stalled: map[string]bool{}, partition: map[string]bool{}, cut: map[[2]string]bool{}, degraded: map[string]LinkFault{}, changed: make(chan struct{}), nextHost: 2}
	if n.caFile, err = ca.WriteCA(dir); err != nil {
		return nil, err
	}
	if n.client, err = ca.IssueFiles(dir, "client", pki.Options{CommonName: "quorumguard-client"}); err != nil {
		return nil, err
	}
	proxy, err := ca.Issue(pki.Options{CommonName: "etcdnet-proxy"})
	if err != nil {
		return nil, err
	}
	if n.proxyCert, err = proxy.TLSCertificate(); err != nil {
		return nil, err
	}
	if n.ipPrefix, n.reserved, err = reservePrefix(candidate); err != nil {
		return nil, err
	}
	return n, nil
}

// reservePrefix takes the first candidate /24 whose <prefix>.1:2380 it can listen on, and
// returns that listener, which the network holds for its life. No member ever uses .1 (they
// start at .2), so the listener is only a claim; but since every network claims its prefix
// this way, a second network in this process or any other finds the port taken and moves on.
// Probing the port and closing it again, as this once did, claimed nothing: two networks
// starting together could both see it free and share a /24.
func reservePrefix(candidate func() [3]byte) ([3]byte, net.Listener, error) {
	for range 64 {
		p := candidate()
		ip := net.IPv4(p[0], p[1], p[2], 1)
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), fmt.Sprint(PeerPort)))
		if err != nil {
			continue
		}
		return p, l, nil
	}
	return [3]byte{}, nil, fmt.Errorf("no free loopback /24 found for the test machines")
}

// AllocateIP returns the next unused loopback address of this network (127.x.y.2, .3, ...).
func (n *Network) AllocateIP() (net.IP, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nextHost > 254 {
		return nil, fmt.Errorf("loopback /24 %d.%d.%d.0 is exhausted", n.ipPrefix[0], n.ipPrefix[1], n.ipPrefix[2])
	}
	ip := net.IPv4(n.ipPrefix[0], n.ipPrefix[1], n.ipPrefix[2], byte(n.nextHost))
	n.nextHost++
	return ip, nil
}

// ClientFiles are the CA, certificate and key a controller uses to reach the members.
func (n *Network) ClientFiles() (caFile, certFile, keyFile string) {
	return n.caFile, n.client.CertFile, n.client.KeyFile
}

// ClientTLS is a tls.Config with the client certificate and the run's CA.
func (n *Network) ClientTLS() (*tls.Config, error) {
	c, err := n.client.TLSCertificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, RootCAs: n.pool, MinVersion: tls.VersionTLS12}, nil
}

// Member returns the member started under name, or nil.
func (n *Network) Member(name string) *Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.members[name]
}

// Members returns every member started in this network, running or not.
func (n *Network) Members() []*Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Member, 0, len(n.members))
	for _, m := range n.members {
		out = append(out, m)
	}
	return out
}

// Close kills every member (a test's cluster needs no graceful goodbye) and gives up the
// network's /24.
func (n *Network) Close() {
	n.closedOnce.Do(func() {
		var wg sync.WaitGroup
		for _, m := range n.Members() {
			wg.Add(1)
			go func() { defer wg.Done(); m.Kill() }()
		}
		wg.Wait()
		n.reserved.Close()
	})
}

func (n *Network) setFault(name string, frozen, partitioned *bool) {
	n.mu.Lock()
	if frozen != nil {
		n.frozen[name] = *frozen
	}
	if partitioned != nil {
		n.partition[name] = *partitioned
	}
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// LinkFault degrades a member's peer links, both ways: data on the link is passed on Latency
// after it was read, and with probability Loss (per read) RetransmitDelay later still, as a
// TCP segment that was lost and sent again is. Bytes keep their order, so data read just
// after a "lost" read waits for it, as it would behind a retransmission. Rate, when not zero,
// caps each connection of the link at that many bytes a second, as a slow network does.
type LinkFault struct {
	Latency time.Duration
	Loss    float64
	Rate    int64
}

// RetransmitDelay is what a lost segment costs: Linux's minimum retransmission timeout.
const RetransmitDelay = 200 * time.Millisecond

func (f LinkFault) String() string {
	out := fmt.Sprintf("%s latency and %.0f%% loss", f.Latency, 100*f.Loss)
	if f.Rate > 0 {
		out += fmt.Sprintf(", at most %d KiB/s", f.Rate>>10)
	}
	return out
}

// Degrade degrades the peer links of the member named name (see LinkFault) until Restore,
// whether or not it runs yet: a member degraded before it starts is slow from its first byte.
func (n *Network) Degrade(name string, f LinkFault) {
	n.mu.Lock()
	n.degraded[name] = f
	n.mu.Unlock()
}

// linkRate is the byte rate the link between from and to is capped at; 0 when it is not.
func (n *Network) linkRate(from, to string) int64 {
	if from == "" || to == "" {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	a, b := n.degraded[from].Rate, n.degraded[to].Rate
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// linkDelay is how long data between from and to waits now: zero unless it is a peer link
// with a degraded end.
func (n *Network) linkDelay(from, to string) time.Duration {
	if from == "" || to == "" {
		return 0
	}
	n.mu.Lock()
	a, b := n.degraded[from], n.degraded[to]
	n.mu.Unlock()
	d := max(a.Latency, b.Latency)
	if loss := max(a.Loss, b.Loss); loss > 0 && rand.Float64() < loss {
		d += RetransmitDelay
	}
	return d
}

// blocked says whether traffic between two members is cut. Either side is "" for a client,
// whose traffic a partition never cuts.
func (n *Network) blocked(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if from == "" || to == "" || from == to {
		return false
	}
	return n.partition[from] || n.partition[to] || n.cut[linkKey(from, to)]
}

// held says whether traffic between from and to is frozen (all of a frozen member's, the
// peer traffic of a stalled one), and a channel closed at the next change of fault state.
func (n *Network) held(from, to string) (bool, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	peer := from != "" && to != ""
	return n.frozen[to] || n.frozen[from] || peer && (n.stalled[to] || n.stalled[from]), n.changed
}

// pipe copies src to dst, holding data while the network says the link is frozen, until
// either side closes or stop is closed. Data read is passed on by a second goroutine when it
// falls due: at once, or after the link's delay (see LinkFault), so that a slow link delays
// every byte by its latency without limiting how many bytes it carries.
func (n *Network) pipe(dst, src net.Conn, from, to string, stop <-chan struct{}) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	q := make(chan chunk, 256)
	written := make(chan struct{})
	go func() {
		defer close(written)
		// Closing both ends ends the reader below (then q closes) and the other direction.
		closeBoth := func() {
			dst.Close()
			src.Close()
			for range q {
			}
		}
		for c := range q {
			if d := time.Until(c.due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-stop:
					t.Stop()
					closeBoth()
					return
				}
			}
			if _, err := dst.Write(c.b); err != nil {
				closeBoth()
				return
			}
		}
		dst.Close()
		src.Close()
	}()
	defer func() { <-written }()
	defer close(q)
	buf := make([]byte, 32<<10)
	var last time.Time
	for {
		k, err := src.Read(buf)
		if k > 0 {
			for {
				h, ch := n.held(from, to)
				if !h {
					break
				}
				select {
				case <-ch:
				case <-stop:
					src.Close()
					return
				}
			}
			if n.blocked(from, to) {
				src.Close()
				return
			}
			due := time.Now().Add(n.linkDelay(from, to))
			if due.Before(last) { // bytes keep their order
				due = last
			}
			if rate := n.linkRate(from, to); rate > 0 {
				due = due.Add(time.Duration(int64(k) * int64(time.Second) / rate))
			}
			last = due
			select {
			case q <- chunk{b: append([]byte(nil), buf[:k]...), due: due}:
			case <-stop:
				src.Close()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// proxy is one listener in front of a member.
type proxy struct {
	net      *Network
	member   string
	listener net.Listener
	upstream string
	peer     bool
	mu       sync.Mutex
	conns    map[net.Conn]string // accepted connection -> caller name ("" for clients)
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (n *Network) startProxy(member string, ip net.IP, port, upstreamPort int, peer bool) (*proxy, error) {
	addr := net.JoinHostPort(ip.String(), fmt.Sprint(port))
	var l net.Listener
	var err error
	// A fresh listener may briefly find the old one's socket; retry a little.
	for i := 0; i < 50; i++ {
		l, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s for member %s: %w", addr, member, err)
	}
	p := &proxy{net: n, member: member, listener: l, peer: peer, conns: map[net.Conn]string{}, stop: make(chan struct{}),
		upstream: net.JoinHostPort(ip.String(), fmt.Sprint(upstreamPort))}
	if peer {
		srvCert, err := n.CA.Issue(pki.Options{CommonName: member + "-peer-proxy", IPs: []net.IP{ip}})
		if err != nil {
			l.Close()
			return nil, err
		}
		c, err := srvCert.TLSCertificate()
		if err != nil {
			l.Close()
			return nil, err
		}
		p.listener = tls.NewListener(l, &tls.Config{
			Certificates: []tls.Certificate{c},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    n.pool,
			NextProtos:   []string{"http/1.1"},
			MinVersion:   tls.VersionTLS12,
		})
	}
	p.wg.Add(1)
	go p.serve(ip)
	return p, nil
}

func (p *proxy) serve(ip net.IP) {
	defer p.wg.Done()
	for {
		c, err := p.listener.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c, ip)
		}()
	}
}

func (p *proxy) handle(c net.Conn, ip net.IP) {
	from := ""
	var up net.Conn
	var err error
	if p.peer {
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return
		}
		_ = tc.SetDeadline(time.Time{})
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			from = certs[0].Subject.CommonName
		}
		if p.net.blocked(from, p.member) {
			c.Close()
			return
		}
		up, err = tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", p.upstream, &tls.Config{
			Certificates: []tls.Certificate{p.net.proxyCert},
			RootCAs:      p.net.pool,
			ServerName:   ip.String(),
			NextProtos:   []string{"http/1.1"},
			MinVersion:   tls.VersionTLS12,
		})
	} else {
		up, err = net.DialTimeout("tcp", p.upstream, 2*time.Second)
	}
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.conns == nil { // closed meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c] = from
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.net.pipe(up, c, from, p.member, p.stop); close(done) }()
	p.net.pipe(c, up, p.member, from, p.stop)
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cut closes the live connections for which drop says so.
func (p *proxy) cut(drop func(from string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, from := range p.conns {
		if drop(from) {
			c.Close()
		}
	}
}

func (p *proxy) close() {
	close(p.stop)
	p.listener.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// Bootstrap allocates an address for each name, starts a fresh cluster of those members and
// waits until all of them serve clients.
func (n *Network) Bootstrap(ctx context.Context, names ...string) ([]*Member, error) {
	ips := make([]net.IP, len(names))
	initial := map[string]string{}
	for i, name := range names {
		ip, err := n.AllocateIP()
		if err != nil {
			return nil, err
		}
		ips[i] = ip
		initial[name] = urlFor(ip, PeerPort)
	}
	members := make([]*Member, 0, len(names))
	for i, name := range names {
		m, err := n.StartMember(MemberConfig{Name: name, IP: ips[i], InitialCluster: initial})
		if err != nil {
			return nil, err
		}
		members = append(members, m)
	}
	for _, m := range members {
		if err := m.WaitReady(ctx); err != nil {
			return nil, err
		}
	}
	return members, nil
}

// ClientURLs are the advertised client URLs of the given members.
func ClientURLs(members []*Member) []string {
	out := make([]string, len(members))
	for i, m := range members {
		out[i] = m.ClientURL()
	}
	return out
}

// Faults describes the faults in force now: members frozen, partitioned, or stopped while
// their process should run. "" when there are none.
func (n *Network) Faults() string {
	n.mu.Lock()
	var parts []string
	for name, on := range n.frozen {
		if on {
			parts = append(parts, name+" frozen")
		}
	}
	for name, on := range n.partition {
		if on {
			parts = append(parts, name+" partitioned")
		}
	}
	for link := range n.cut {
		parts = append(parts, fmt.Sprintf("link %s-%s cut", link[0], link[1]))
	}
	for name, on := range n.stalled {
		if on {
			parts = append(parts, name+" disk stalled")
		}
	}
	for name, f := range n.degraded {
		parts = append(parts, fmt.Sprintf("%s peer links with %s", name, f))
	}
	members := make([]*Member, 0, len(n.members))
	for _, m := range n.members {
		members = append(members, m)
	}
	n.mu.Unlock()
	for _, m := range members {
		if !m.Running() {
			parts = append(parts, m.Name+" down")
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
