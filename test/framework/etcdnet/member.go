package etcdnet

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quorumguard/quorumguard/test/framework/pki"
)

// MemberConfig says how to start one member.
type MemberConfig struct {
	Name string
	IP   net.IP
	// InitialCluster lists name=peerURL for every member the new member should know of,
	// itself included. Empty means a single-member cluster of itself.
	InitialCluster map[string]string
	// Existing joins a running cluster (the member must already have been added).
	Existing bool
	// TickMs and ElectionMs default to 50 and 500: quicker than etcd's 100/1000 so tests of
	// leader loss stay short, still far above loopback latency.
	TickMs, ElectionMs uint
	// QuotaBackendBytes defaults to the network's, or 2 GiB.
	QuotaBackendBytes int64
	// SnapshotCount and SnapshotCatchUpEntries are etcd's --snapshot-count and
	// --snapshot-catchup-entries; etcd's defaults when zero. A leader keeps only the catch-up
	// entries after each snapshot, so a member joining later receives a database snapshot.
	SnapshotCount, SnapshotCatchUpEntries uint64
}

// Member is one embedded etcd member with its proxies.
type Member struct {
	Name string
	IP   net.IP

	net *Network
	cfg MemberConfig
	dir string
	// life serialises start and shutdown, which can take seconds; mu guards the fields below
	// for short reads only, so that asking whether a member runs never waits on a shutdown.
	life    sync.Mutex
	mu      sync.Mutex
	etcd    *embed.Etcd
	client  *proxy
	peer    *proxy
	running bool
}

// PeerURL is the advertised peer URL, https://<ip>:2380.
func (m *Member) PeerURL() string { return urlFor(m.IP, PeerPort) }

// ClientURL is the advertised client URL, https://<ip>:2379.
func (m *Member) ClientURL() string { return urlFor(m.IP, ClientPort) }

// DataDir is where the member keeps its files (its etcd data dir is DataDir()/data).
func (m *Member) DataDir() string { return m.dir }

// DataDir is the etcd data dir a member named name uses.
func (n *Network) DataDir(name string) string { return filepath.Join(n.Dir, name, "data") }

func urlFor(ip net.IP, port int) string {
	return "https://" + net.JoinHostPort(ip.String(), fmt.Sprint(port))
}

// StartMember starts a member. It returns once the member is listening; a member of a new
// cluster becomes ready only when enough of its peers have started too.
func (n *Network) StartMember(cfg MemberConfig) (*Member, error) {
	if cfg.Name == "" || cfg.IP == nil {
		return nil, fmt.Errorf("etcd member needs a name and an IP, got name %q ip %v", cfg.Name, cfg.IP)
	}
	if cfg.TickMs == 0 {
		cfg.TickMs = 50
	}
	if cfg.ElectionMs == 0 {
		cfg.ElectionMs = 500
	}
	if cfg.QuotaBackendBytes == 0 {
		cfg.QuotaBackendBytes = n.QuotaBackendBytes
	}
	if cfg.SnapshotCount == 0 {
		cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = n.SnapshotCount, n.SnapshotCatchUpEntries
	}
	if cfg.QuotaBackendBytes == 0 {
		cfg.QuotaBackendBytes = 2 << 30
	}
	n.mu.Lock()
	if _, ok := n.members[cfg.Name]; ok {
		n.mu.Unlock()
		return nil, fmt.Errorf("etcd member %q already exists in this network", cfg.Name)
	}
	m := &Member{Name: cfg.Name, IP: cfg.IP, net: n, cfg: cfg, dir: filepath.Join(n.Dir, cfg.Name)}
	n.members[cfg.Name] = m
	n.mu.Unlock()
	if err := m.start(); err != nil {
		n.mu.Lock()
		delete(n.members, cfg.Name)
		n.mu.Unlock()
		return nil, err
	}
	return m, nil
}

func (m *Member) start() error {
	m.life.Lock()
	defer m.life.Unlock()
	m.mu.Lock()
	running := m.running
	m.mu.Unlock()
	if running {
		return nil
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return err
	}
	n := m.net
	serving, err := n.CA.IssueFiles(m.dir, "server", pki.Options{CommonName: m.Name, IPs: []net.IP{m.IP}})
	if err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = n.DataDir(m.Name)
	cfg.TickMs = m.cfg.TickMs
	cfg.ElectionMs = m.cfg.ElectionMs
	cfg.QuotaBackendBytes = m.cfg.QuotaBackendBytes
	if m.cfg.SnapshotCount > 0 {
		cfg.SnapshotCount = m.cfg.SnapshotCount
	}
	if m.cfg.SnapshotCatchUpEntries > 0 {
		cfg.SnapshotCatchUpEntries = m.cfg.SnapshotCatchUpEntries
	}
	logFile := filepath.Join(m.dir, "etcd.log")
	lg, err := memberLogger(logFile)
	if err != nil {
		return err
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	var served atomic.Pointer[embed.Etcd]
	cfg.GRPCAdditionalServerOptions = stoppedMemberGuard(m.Name, &served)
	cfg.LogOutputs = []string{logFile}
	cfg.ListenClientUrls = []url.URL{mustURL(urlFor(m.IP, memberClientPort))}
	cfg.AdvertiseClientUrls = []url.URL{mustURL(m.ClientURL())}
	cfg.ListenPeerUrls = []url.URL{mustURL(urlFor(m.IP, memberPeerPort))}
	cfg.AdvertisePeerUrls = []url.URL{mustURL(m.PeerURL())}
	cfg.ListenMetricsUrls = nil
	for _, t := range []*transport.TLSInfo{&cfg.ClientTLSInfo, &cfg.PeerTLSInfo} {
		t.CertFile, t.KeyFile, t.TrustedCAFile, t.ClientCertAuth = serving.CertFile, serving.KeyFile, n.caFile, true
	}
	cfg.InitialClusterToken = "quorumguard-test"
	ic := m.cfg.InitialCluster
	if len(ic) == 0 {
		ic = map[string]string{m.Name: m.PeerURL()}
	}
	parts := make([]string, 0, len(ic))
	for name, u := range ic {
		parts = append(parts, name+"="+u)
	}
	cfg.InitialCluster = strings.Join(parts, ",")
	cfg.ClusterState = embed.ClusterStateFlagNew
	_, statErr := os.Stat(filepath.Join(cfg.Dir, "member"))
	if m.cfg.Existing || statErr == nil {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}

	clientProxy, err := n.startProxy(m.Name, m.IP, ClientPort, memberClientPort, false)
	if err != nil {
		return err
	}
	peerProxy, err := n.startProxy(m.Name, m.IP, PeerPort, memberPeerPort, true)
	if err != nil {
		clientProxy.close()
		return err
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		clientProxy.close()
		peerProxy.close()
		return fmt.Errorf("start etcd member %s at %s: %w (log: %s)", m.Name, m.IP, err, cfg.LogOutputs[0])
	}
	served.Store(e)
	m.mu.Lock()
	m.client, m.peer, m.etcd, m.running = clientProxy, peerProxy, e, true
	m.mu.Unlock()
	return nil
}

// memberLogger writes warnings to path. A member that etcd's own code decides to crash (a
// Panic log, as when a removed member answers a Status call before it stops) would take the
// whole test process with it, since members run in-process; instead only the goroutine that
// logged it exits, which is as much as a crashed etcd process would still do.
func memberLogger(path string) (*zap.Logger, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(f), zapcore.WarnLevel)
	return zap.New(core, zap.WithPanicHook(zapcore.WriteThenGoexit)), nil
}

// stoppedMemberGuard answers Unavailable, as a dead process's closed socket would, to any
// call that reaches a member whose server has stopped while its gRPC listener still runs:
// between a kill and the listener's close, or after etcd stops a member that learnt it was
// removed. Without it such a call can dereference the closed backend and, since members run
// in-process, crash every test. A panic in a member that has not stopped is a real bug and
// is passed on.
func stoppedMemberGuard(name string, served *atomic.Pointer[embed.Etcd]) []grpc.ServerOption {
	stopped := func() bool {
		e := served.Load()
		return e != nil && isClosed(e.Server.StoppingNotify())
	}
	unavailable := status.Errorf(codes.Unavailable, "etcd member %s has stopped", name)
	guard := func(call func() error) (err error) {
		if stopped() {
			return unavailable
		}
		defer func() {
			if r := recover(); r != nil {
				if !stopped() {
					panic(r)
				}
				err = unavailable
			}
		}()
		return call()
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
			err = guard(func() error {
				var herr error
				resp, herr = h(ctx, req)
				return herr
			})
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return guard(func() error { return h(srv, ss) })
		}),
	}
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}

// WaitReady blocks until the member serves clients or ctx ends.
func (m *Member) WaitReady(ctx context.Context) error {
	m.mu.Lock()
	e := m.etcd
	m.mu.Unlock()
	if e == nil {
		return fmt.Errorf("etcd member %s is not running", m.Name)
	}
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case <-e.Server.StopNotify():
		return fmt.Errorf("etcd member %s stopped before it was ready (log: %s)", m.Name, filepath.Join(m.dir, "etcd.log"))
	case <-ctx.Done():
		return fmt.Errorf("etcd member %s not ready: %w", m.Name, ctx.Err())
	}
}

// Running says whether the member process is up (it may still be frozen or partitioned).
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running && m.etcd != nil && !isClosed(m.etcd.Server.StopNotify())
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ID is the member's etcd ID, or 0 while it is not running.
func (m *Member) ID() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd == nil {
		return 0
	}
	return uint64(m.etcd.Server.MemberID())
}

// Stop stops the member gracefully (leadership is handed over first, as etcd does on SIGTERM).
func (m *Member) Stop() { m.shutdown(false) }

// Kill stops the member abruptly: its sockets close at once and it hands nothing over.
func (m *Member) Kill() { m.shutdown(true) }

func (m *Member) shutdown(hard bool) {
	m.life.Lock()
	defer m.life.Unlock()
	m.mu.Lock()
	if !m.running {
		m.mu.Unlock()
		return
	}
	m.running = false
	e, clientProxy, peerProxy := m.etcd, m.client, m.peer
	m.mu.Unlock()
	clientProxy.close()
	peerProxy.close()
	if hard || !isClosed(e.Server.ReadyNotify()) {
		// A member that never became ready cannot hand anything over, and etcd's graceful
		// close waits for it forever.
		e.Server.HardStop()
	}
	done := make(chan struct{})
	go func() { e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
	}
}

// Restart starts a stopped or killed member again from its data directory.
func (m *Member) Restart() error {
	m.life.Lock()
	m.cfg.Existing = true
	m.life.Unlock()
	return m.start()
}

// Freeze makes the member stop answering anyone while keeping its sockets open, like a
// process stopped with SIGSTOP or a machine whose disk hangs.
func (m *Member) Freeze() {
	t := true
	m.net.setFault(m.Name, &t, nil)
}

// Thaw undoes Freeze.
func (m *Member) Thaw() {
	f := false
	m.net.setFault(m.Name, &f, nil)
}

// StallDisk plays a disk that stops completing fsync: the member's raft loop waits on its
// write-ahead log, so nothing it owes its peers leaves and nothing they send is taken in, while
// its connections stay open. Its peer traffic is held both ways (not cut, unlike Partition);
// clients still reach it, and it answers what needs no raft round (Status, serializable reads)
// from memory. Resume undoes it.
func (m *Member) StallDisk() {
	m.net.mu.Lock()
	m.net.stalled[m.Name] = true
	m.net.mu.Unlock()
	m.net.setFault(m.Name, nil, nil)
}

// Resume undoes StallDisk: the held traffic flows again.
func (m *Member) Resume() {
	m.net.mu.Lock()
	delete(m.net.stalled, m.Name)
	m.net.mu.Unlock()
	m.net.setFault(m.Name, nil, nil)
}

// Degrade slows the member's peer links both ways (see LinkFault) until Restore.
func (m *Member) Degrade(f LinkFault) { m.net.Degrade(m.Name, f) }

// Restore undoes Degrade.
func (m *Member) Restore() {
	m.net.mu.Lock()
	delete(m.net.degraded, m.Name)
	m.net.mu.Unlock()
}

// Partition cuts the member's peer traffic both ways. Clients can still connect to it.
func (m *Member) Partition() {
	t := true
	m.net.setFault(m.Name, nil, &t)
	for _, o := range m.net.Members() {
		o.mu.Lock()
		p := o.peer
		running := o.running
		o.mu.Unlock()
		if !running {
			continue
		}
		if o == m {
			p.cut(func(from string) bool { return from != m.Name })
		} else {
			p.cut(func(from string) bool { return from == m.Name })
		}
	}
}

// Cut cuts the peer link between m and o, both ways, and no other: each still reaches every
// other member, and clients reach both. Mend undoes it.
func (m *Member) Cut(o *Member) {
	m.net.mu.Lock()
	m.net.cut[linkKey(m.Name, o.Name)] = true
	m.net.mu.Unlock()
	m.net.setFault(m.Name, nil, nil)
	for _, pair := range [][2]*Member{{m, o}, {o, m}} {
		at, from := pair[0], pair[1]
		at.mu.Lock()
		p, running := at.peer, at.running
		at.mu.Unlock()
		if running {
			p.cut(func(name string) bool { return name == from.Name })
		}
	}
}

// Mend undoes Cut.
func (m *Member) Mend(o *Member) {
	m.net.mu.Lock()
	delete(m.net.cut, linkKey(m.Name, o.Name))
	m.net.mu.Unlock()
	m.net.setFault(m.Name, nil, nil)
}

func linkKey(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Heal undoes Partition.
func (m *Member) Heal() {
	f := false
	m.net.setFault(m.Name, nil, &f)
}
