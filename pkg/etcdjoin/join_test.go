package etcdjoin_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorumguard/quorumguard/pkg/etcdjoin"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// syncBuffer is the progress output, read while Run writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type cluster struct {
	net     *etcdnet.Network
	members []*etcdnet.Member
	raw     *clientv3.Client
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	n, ms, tc := etcdnet.StartTest(t, "m0", "m1", "m2")
	raw, err := clientv3.New(clientv3.Config{Endpoints: etcdnet.ClientURLs(ms), TLS: tc, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &cluster{net: n, members: ms, raw: raw}
}

// change makes a membership change as the controller would: each attempt is bounded (etcd
// never answers a reconfiguration whose proposal was dropped in a leader change, so an
// unbounded call can wait forever), and etcd's refusal of changes in the first seconds after
// members connect ("unhealthy cluster") and a lost leader are waited out. fn is called again
// after an attempt whose outcome is unknown, so it must accept its own earlier success.
func (c *cluster) change(t *testing.T, fn func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err := fn(ctx)
		cancel()
		if err == nil {
			return
		}
		retry := errors.Is(err, rpctypes.ErrUnhealthy) || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrNoLeader) ||
			errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail)
		if !retry || t.Context().Err() != nil || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// addLearner adds a learner with peer and returns its ID.
func (c *cluster) addLearner(t *testing.T, peer string) uint64 {
	t.Helper()
	var id uint64
	c.change(t, func(ctx context.Context) error {
		resp, err := c.raw.MemberAddAsLearner(ctx, []string{peer})
		if err == nil {
			id = resp.Member.ID
			return nil
		}
		if !errors.Is(err, rpctypes.ErrPeerURLExist) {
			return err
		}
		// An earlier attempt that timed out was applied after all.
		list, lerr := c.raw.MemberList(ctx)
		if lerr != nil {
			return lerr
		}
		for _, m := range list.Members {
			if slices.Contains(m.PeerURLs, peer) && m.IsLearner {
				id = m.ID
				return nil
			}
		}
		return err
	})
	return id
}

// removeMember removes the member id, accepting that an earlier attempt did it.
func (c *cluster) removeMember(t *testing.T, id uint64) {
	t.Helper()
	removed := false
	c.change(t, func(ctx context.Context) error {
		_, err := c.raw.MemberRemove(ctx, id)
		if removed && errors.Is(err, rpctypes.ErrMemberNotFound) {
			return nil
		}
		removed = true
		return err
	})
}

// lister is the join's view of the cluster, through the given client files.
func lister(t *testing.T, endpoints []string, files etcdmember.TLSFiles) *etcdmember.Client {
	t.Helper()
	c, err := etcdmember.NewFromFiles(etcdmember.Config{Endpoints: endpoints, CallTimeout: 3 * time.Second}, files)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (c *cluster) lister(t *testing.T) *etcdmember.Client {
	ca, cert, key := c.net.ClientFiles()
	return lister(t, etcdnet.ClientURLs(c.members), etcdmember.TLSFiles{CA: ca, Cert: cert, Key: key})
}

type outcome struct {
	res etcdjoin.Result
	err error
}

func runJoin(t *testing.T, cfg etcdjoin.Config) (<-chan outcome, *syncBuffer) {
	out := &syncBuffer{}
	cfg.Out, cfg.Interval = out, 100*time.Millisecond
	done := make(chan outcome, 1)
	go func() {
		res, err := etcdjoin.Run(t.Context(), cfg)
		done <- outcome{res, err}
	}()
	return done, out
}

// waitOutput waits until the join has said want (it says each thing as it happens).
func waitOutput(t *testing.T, out *syncBuffer, done <-chan outcome, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(out.String(), want) {
		select {
		case o := <-done:
			t.Fatalf("join returned (%+v, %v) before saying %q; it said:\n%s", o.res.Step, o.err, want, out)
		case <-deadline:
			t.Fatalf("join never said %q; it said:\n%s", want, out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func wait(t *testing.T, done <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-done:
		return o
	case <-time.After(30 * time.Second):
		t.Fatal("join did not return within 30s of being added")
		return outcome{}
	}
}

func TestJoinWaitsForTheLearnerAndStartsFromTheEnvFile(t *testing.T) {
	c := startCluster(t)
	ip, err := c.net.AllocateIP()
	if err != nil {
		t.Fatal(err)
	}
	peer := "https://" + net.JoinHostPort(ip.String(), "2380")
	envFile := filepath.Join(t.TempDir(), "etcd.env")
	done, out := runJoin(t, etcdjoin.Config{Name: "m3", PeerURL: peer, DataDir: c.net.DataDir("m3"), EnvFile: envFile, Members: c.lister(t)})
	waitOutput(t, out, done, "waiting for quorumguard to add "+peer)
	if _, err := os.Stat(envFile); !os.IsNotExist(err) {
		t.Fatalf("env file written before the member was added: %v", err)
	}
	added := c.addLearner(t, peer)
	o := wait(t, done)
	if o.err != nil || o.res.Step.Kind != etcdjoin.Join || o.res.Step.Member.ID != added {
		t.Fatalf("join = %s member %x, %v; want join of %x", o.res.Step.Kind, o.res.Step.Member.ID, o.err, added)
	}
	env, err := etcdjoin.ReadEnv(envFile)
	if err != nil {
		t.Fatal(err)
	}
	cl := env.Cluster()
	if env.Name != "m3" || env.State != "existing" || env.PeerURL != peer || len(cl) != 4 || cl["m3"][0] != peer {
		t.Fatalf("env = %+v, cluster %v", env, cl)
	}
	// etcd starts from exactly what the file says.
	initial := map[string]string{}
	for name, urls := range cl {
		initial[name] = urls[0]
	}
	m, err := c.net.StartMember(etcdnet.MemberConfig{Name: env.Name, IP: ip, InitialCluster: initial, Existing: env.State == "existing"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if m.ID() != added {
		t.Fatalf("started member has ID %x, the learner added was %x", m.ID(), added)
	}
}

func TestJoinRestartsAListedMemberAtOnce(t *testing.T) {
	c := startCluster(t)
	m := c.members[1]
	id := m.ID()
	m.Stop()
	envFile := filepath.Join(t.TempDir(), "etcd.env")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := etcdjoin.Run(ctx, etcdjoin.Config{Name: m.Name, PeerURL: m.PeerURL(), DataDir: c.net.DataDir(m.Name), EnvFile: envFile, Members: c.lister(t)})
	if err != nil || res.Step.Kind != etcdjoin.Restart || res.MovedAside != "" {
		t.Fatalf("join = %s (moved %q), %v; want a restart that moves nothing", res.Step.Kind, res.MovedAside, err)
	}
	if got, err := etcdjoin.DataMember(c.net.DataDir(m.Name)); err != nil || got != id {
		t.Fatalf("data dir now records %x (%v), want %x untouched", got, err, id)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitReady(ctx); err != nil || m.ID() != id {
		t.Fatalf("restarted member: %v, ID %x want %x", err, m.ID(), id)
	}
}

func TestJoinSetsAStaleDataDirAside(t *testing.T) {
	for _, tc := range []struct {
		name    string
		readd   bool // the peer URL is added afresh before the join runs
		explain string
	}{
		{"member removed", false, "no longer in the cluster"},
		{"peer URL added again under a new ID", true, "now belongs to member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t)
			m := c.members[2]
			old := m.ID()
			m.Kill()
			c.removeMember(t, old)
			if tc.readd {
				c.addLearner(t, m.PeerURL())
			}
			dataDir := c.net.DataDir(m.Name)
			envFile := filepath.Join(t.TempDir(), "etcd.env")
			done, out := runJoin(t, etcdjoin.Config{Name: m.Name, PeerURL: m.PeerURL(), DataDir: dataDir, EnvFile: envFile, Members: c.lister(t),
				Now: func() time.Time { return time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC) }})
			if !tc.readd {
				waitOutput(t, out, done, tc.explain)
				waitOutput(t, out, done, "waiting for quorumguard to add")
				c.addLearner(t, m.PeerURL())
			}
			o := wait(t, done)
			if o.err != nil || o.res.Step.Kind != etcdjoin.Join {
				t.Fatalf("join = %s, %v; want join", o.res.Step.Kind, o.err)
			}
			want := dataDir + ".stale-20261130T100000Z"
			if o.res.MovedAside != want || !strings.Contains(out.String(), want) || !strings.Contains(out.String(), tc.explain) {
				t.Fatalf("moved aside to %q, want %q; output:\n%s", o.res.MovedAside, want, out)
			}
			if got, err := etcdjoin.DataMember(want); err != nil || got != old {
				t.Fatalf("the kept data dir records %x (%v), want the old member %x", got, err, old)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Fatalf("the data dir etcd starts from is not empty: %v", err)
			}
		})
	}
}

func TestJoinRefusesBadInputAndTouchesNothing(t *testing.T) {
	c := startCluster(t)
	ca, cert, key := c.net.ClientFiles()
	good := etcdmember.TLSFiles{CA: ca, Cert: cert, Key: key}
	other, err := etcdnet.NewNetwork(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	oca, ocert, okey := other.ClientFiles()
	ip, err := c.net.AllocateIP()
	if err != nil {
		t.Fatal(err)
	}
	peer := "https://" + net.JoinHostPort(ip.String(), "2380")
	eps := etcdnet.ClientURLs(c.members)
	for _, tc := range []struct {
		name      string
		peer      string
		endpoints []string
		files     etcdmember.TLSFiles
		want      string
		as        any
	}{
		{"no reachable endpoint", peer, []string{"https://" + net.JoinHostPort(ip.String(), "2379")}, good, "cannot read the member list", nil},
		{"certificate from another CA", peer, eps, etcdmember.TLSFiles{CA: oca, Cert: ocert, Key: okey}, "cannot read the member list", new(*etcdmember.CertificateError)},
		{"peer URL on no local address", "https://192.0.2.10:2380", eps, good, "on no address of this node", nil},
		{"peer URL over plain http", "http://" + net.JoinHostPort(ip.String(), "2380"), eps, good, "must use https", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A data dir of a removed member: Run would move it aside if it got that far.
			dir := t.TempDir()
			dataDir := filepath.Join(dir, "data")
			if err := copyDir(c.net.DataDir("m0"), dataDir); err != nil {
				t.Fatal(err)
			}
			envFile := filepath.Join(dir, "etcd.env")
			// Bad input is refused at once; the bound only turns a regression into a failure.
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			_, err := etcdjoin.Run(ctx, etcdjoin.Config{Name: "m9", PeerURL: tc.peer, DataDir: dataDir, EnvFile: envFile,
				Members: lister(t, tc.endpoints, tc.files)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if tc.as != nil && !errors.As(err, tc.as) {
				t.Fatalf("err = %v (%T), want it to be a %T", err, err, tc.as)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 || entries[0].Name() != "data" {
				t.Fatalf("the join changed files: %v", entries)
			}
		})
	}
}

func copyDir(from, to string) error {
	return filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
}
