package etcdmember

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Interface is what the rest of the project calls; *Client implements it over etcd.
type Interface interface {
	Members(ctx context.Context) ([]Member, error)
	Health(ctx context.Context, members []Member) []Health
	State(ctx context.Context) ([]Member, []Health, error)
	Status(ctx context.Context, m Member) (Status, error)
	Progress(ctx context.Context, learner uint64) (Progress, error)
	AddLearner(ctx context.Context, token uint64, peerURL string, guards ...Guard) (Member, error)
	Promote(ctx context.Context, token, id uint64, guards ...Guard) error
	WaitPromote(ctx context.Context, token, id uint64, interval time.Duration) error
	Remove(ctx context.Context, token, id uint64, guards ...Guard) error
	RemoveMember(ctx context.Context, token, id uint64, guards ...Guard) error
	MoveLeader(ctx context.Context, token, to uint64, guards ...Guard) error
	Fence(ctx context.Context, token uint64) error
	FenceToken(ctx context.Context) (uint64, error)
	Endpoints() []string
	SetEndpoints(endpoints ...string)
	Sync(ctx context.Context) error
	Close() error
}

var _ Interface = (*Client)(nil)

// etcdAPI is the part of clientv3.Client this package calls.
type etcdAPI interface {
	MemberList(ctx context.Context, opts ...clientv3.OpOption) (*clientv3.MemberListResponse, error)
	MemberAddAsLearner(ctx context.Context, peerAddrs []string) (*clientv3.MemberAddResponse, error)
	MemberPromote(ctx context.Context, id uint64) (*clientv3.MemberPromoteResponse, error)
	MemberRemove(ctx context.Context, id uint64) (*clientv3.MemberRemoveResponse, error)
	AlarmList(ctx context.Context) (*clientv3.AlarmResponse, error)
	Txn(ctx context.Context) clientv3.Txn
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
	Dial(endpoint string) (*grpc.ClientConn, error)
	Endpoints() []string
	SetEndpoints(endpoints ...string)
	Close() error
}

// endpointAPI is what this package sends to one member's own endpoint.
type endpointAPI interface {
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
	Status(ctx context.Context, endpoint string) (*clientv3.StatusResponse, error)
	MoveLeader(ctx context.Context, transfereeID uint64) (*clientv3.MoveLeaderResponse, error)
}

// Defaults for Config.
const (
	DefaultDialTimeout      = 2 * time.Second
	DefaultCallTimeout      = 5 * time.Second
	DefaultProbeTimeout     = 2 * time.Second
	DefaultFenceKey         = "/quorumguard/fence"
	DefaultPromoteInterval  = 50 * time.Millisecond
	healthKey               = "/quorumguard/health"
	reconnectMaxDelay       = 3 * time.Second
	keepaliveTime           = 10 * time.Second
	keepaliveTimeout        = 5 * time.Second
	promoteAttemptThreshold = 0.9
	minProgressPoll         = 200 * time.Millisecond
	connectedPoll           = 20 * time.Millisecond
)

// Config says how to reach etcd.
type Config struct {
	// Endpoints are client URLs, https://host:port.
	Endpoints []string
	// TLS carries the client certificate and the CA that signed the members' certificates.
	TLS *tls.Config
	// DialTimeout bounds each attempt to connect to an endpoint.
	DialTimeout time.Duration
	// CallTimeout bounds each call to the cluster.
	CallTimeout time.Duration
	// ProbeTimeout bounds each probe of one member's own endpoint.
	ProbeTimeout time.Duration
	// FenceKey is where the fencing token is kept.
	FenceKey string
	// Logger receives the etcd client library's own log; nil discards it.
	Logger *zap.Logger
}

// TLSFiles are PEM files: the CA that signed the members' certificates, and the client
// certificate and key. They are read again at every handshake, so rotated files are used.
type TLSFiles struct {
	CA, Cert, Key string
}

// CheckTLSFiles reads the three files as a client would and says which one is missing,
// unreadable or not what it should be: a command that is given them fails on that itself,
// rather than reporting an etcd it could not reach.
func CheckTLSFiles(files TLSFiles) error {
	for _, f := range []struct{ flag, path string }{{"--etcd-ca-file", files.CA}, {"--etcd-cert-file", files.Cert}, {"--etcd-key-file", files.Key}} {
		if _, err := os.ReadFile(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
	}
	if _, err := tls.LoadX509KeyPair(files.Cert, files.Key); err != nil {
		return fmt.Errorf("--etcd-cert-file %s and --etcd-key-file %s: %w", files.Cert, files.Key, err)
	}
	pem, _ := os.ReadFile(files.CA)
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Errorf("--etcd-ca-file %s holds no PEM certificate", files.CA)
	}
	return nil
}

// Client changes and inspects etcd membership.
type Client struct {
	etcd       etcdAPI
	open       func(endpoint string) (endpointAPI, func(), error)
	closeProbe func() error
	cfg        Config
	// beforeChange runs right before a membership change or leadership move is sent.
	beforeChange func(ctx context.Context, op string, id uint64)
	// metrics reads members' metrics (SnapshotSends).
	metrics metricsHTTP
}

// New connects to etcd with mutual TLS. It does not wait for a connection: the first call
// reports an endpoint that cannot be reached.
func New(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd client needs at least one endpoint")
	}
	for _, ep := range cfg.Endpoints {
		if !strings.HasPrefix(ep, "https://") {
			return nil, fmt.Errorf("etcd endpoint %q: only https:// endpoints are allowed", ep)
		}
	}
	if cfg.TLS == nil || (len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetClientCertificate == nil) {
		return nil, errors.New("etcd client needs a TLS configuration with a client certificate")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	if cfg.FenceKey == "" {
		cfg.FenceKey = DefaultFenceKey
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	bo := backoff.DefaultConfig
	bo.MaxDelay = reconnectMaxDelay
	v3cfg := func(retries uint, interceptors ...grpc.UnaryClientInterceptor) clientv3.Config {
		return clientv3.Config{
			Endpoints:            slices.Clone(cfg.Endpoints),
			TLS:                  cfg.TLS.Clone(),
			DialTimeout:          cfg.DialTimeout,
			DialKeepAliveTime:    keepaliveTime,
			DialKeepAliveTimeout: keepaliveTimeout,
			MaxUnaryRetries:      retries,
			Logger:               cfg.Logger,
			DialOptions: []grpc.DialOption{
				grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: cfg.DialTimeout}),
				grpc.WithChainUnaryInterceptor(interceptors...),
			},
		}
	}
	const defaultRetries, singleAttempt = 0, 1
	cli, err := clientv3.New(v3cfg(defaultRetries, recordAttempt))
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	// Calls to one member's own endpoint make a single attempt that fails as soon as the
	// connection does, so a dead member is reported at once rather than at the timeout.
	probe, err := clientv3.New(v3cfg(singleAttempt, recordAttempt, failFast))
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	c := &Client{etcd: cli, cfg: cfg, closeProbe: probe.Close}
	c.open = func(ep string) (endpointAPI, func(), error) {
		conn, err := probe.Dial(ep)
		if err != nil {
			return nil, nil, err
		}
		return endpointConn{
			KV:          clientv3.NewKVFromKVClient(pb.NewKVClient(conn), probe),
			Maintenance: clientv3.NewMaintenanceFromMaintenanceClient(pb.NewMaintenanceClient(conn), probe),
		}, func() { conn.Close() }, nil
	}
	return c, nil
}

// NewFromFiles is New with the TLS configuration read from files.
func NewFromFiles(cfg Config, files TLSFiles) (*Client, error) {
	info := transport.TLSInfo{CertFile: files.Cert, KeyFile: files.Key, TrustedCAFile: files.CA}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd client TLS from %s, %s, %s: %w", files.CA, files.Cert, files.Key, err)
	}
	cfg.TLS = tc
	return New(cfg)
}

type endpointConn struct {
	clientv3.KV
	clientv3.Maintenance
}

// Close closes every connection.
func (c *Client) Close() error {
	if c.metrics.http != nil {
		c.metrics.http.CloseIdleConnections()
	}
	return errors.Join(c.etcd.Close(), c.closeProbe())
}

// Endpoints are the endpoints calls are balanced over.
func (c *Client) Endpoints() []string { return c.etcd.Endpoints() }

// SetEndpoints replaces the endpoints calls are balanced over.
func (c *Client) SetEndpoints(endpoints ...string) { c.etcd.SetEndpoints(endpoints...) }

// Sync sets the endpoints to ClientURLs of the current members. A Client never moves its
// endpoints on its own, not even after a membership change: a caller that follows the
// membership calls Sync (a View follows it itself).
func (c *Client) Sync(ctx context.Context) error {
	ms, err := c.Members(ctx)
	if err != nil {
		return err
	}
	eps := ClientURLs(ms)
	if len(eps) == 0 {
		return &CallError{Where{Op: "sync endpoints", Endpoint: c.where()}, errors.New("no started voting member has a client URL")}
	}
	c.SetEndpoints(eps...)
	return nil
}

// ClientURLs are the client URLs of the started voting members, sorted: the endpoints to
// keep, and to store for a restart, since learners refuse most requests and members that
// never started have none. A controller restarted after every original member was
// replaced finds etcd through the stored list.
func ClientURLs(members []Member) []string {
	var out []string
	for _, m := range members {
		if m.Started && !m.IsLearner {
			out = append(out, m.ClientURLs...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (c *Client) where() string { return strings.Join(c.etcd.Endpoints(), ",") }

// call runs fn with the call timeout and returns its error and the last error a single
// attempt saw.
func call(ctx context.Context, timeout time.Duration, fn func(context.Context) error) (err, last error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	a := &attempts{}
	err = fn(context.WithValue(ctx, attemptsKey{}, a))
	return err, a.get()
}

type attemptsKey struct{}

type attempts struct {
	mu   sync.Mutex
	last error
}

func (a *attempts) get() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// recordAttempt keeps each attempt's error, which the etcd client replaces with the bare
// context error once the deadline passes; it often says why, such as a rejected
// certificate.
func recordAttempt(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if a, ok := ctx.Value(attemptsKey{}).(*attempts); ok && err != nil {
		a.mu.Lock()
		a.last = err
		a.mu.Unlock()
	}
	return err
}

// failFast lets a call fail as soon as its connection has failed, instead of waiting for a
// reconnection until the deadline.
func failFast(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(ctx, method, req, reply, cc, append(opts, grpc.WaitForReady(false))...)
}
