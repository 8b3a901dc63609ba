package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

// etcdClient adapts etcdmember.Client to the controller's Etcd interface. The etcd client is
// made on first use, because with no endpoints given they come from the Machines.
type etcdClient struct {
	files etcdmember.TLSFiles

	mu        sync.Mutex
	cli       *etcdmember.Client
	endpoints []string
	lastOK    time.Time
	lastErr   error
	// discover, when set, gives endpoints from the Machines for a client that has none yet.
	discover func(context.Context) []string
}

var _ controlplane.Etcd = (*etcdClient)(nil)

func newEtcdClient(endpoints []string, ca, cert, key string) (*etcdClient, error) {
	for flag, f := range map[string]string{"--etcd-ca-file": ca, "--etcd-cert-file": cert, "--etcd-key-file": key} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
	}
	return &etcdClient{files: etcdmember.TLSFiles{CA: ca, Cert: cert, Key: key}, endpoints: endpoints}, nil
}

func (e *etcdClient) client() (*etcdmember.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli != nil {
		return e.cli, nil
	}
	if len(e.endpoints) == 0 {
		return nil, errors.New("no etcd endpoints: none were given and no control-plane Machine has an InternalIP")
	}
	cli, err := etcdmember.NewFromFiles(etcdmember.Config{Endpoints: e.endpoints}, e.files)
	if err != nil {
		return nil, err
	}
	e.cli = cli
	return cli, nil
}

// SetEndpoints points the client at endpoints.
func (e *etcdClient) SetEndpoints(endpoints []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if slices.Equal(endpoints, e.endpoints) {
		return
	}
	e.endpoints = slices.Clone(endpoints)
	if e.cli != nil {
		e.cli.SetEndpoints(endpoints...)
	}
}

// Observe lists the members and probes each through its own endpoint; the leader and each
// learner's progress come from those probes' raft status. With quorum lost it returns one
// member's own view of the membership together with the *etcdmember.NoQuorumError.
func (e *etcdClient) Observe(ctx context.Context) ([]controlplane.EtcdMember, error) {
	etcdRequests.WithLabelValues("observe").Inc()
	cli, err := e.client()
	if err != nil {
		e.record(err)
		return nil, err
	}
	members, health, err := cli.State(ctx)
	e.record(err)
	var nq *etcdmember.NoQuorumError
	if err != nil && !errors.As(err, &nq) {
		return nil, err
	}
	leader, index := raftView(health)
	out := make([]controlplane.EtcdMember, len(members))
	for i, m := range members {
		out[i] = controlplane.EtcdMember{Member: m, Leader: m.ID == leader}
		if m.IsLearner && index[leader] > 0 {
			out[i].Progress = min(1, float64(index[m.ID])/float64(index[leader]))
		}
	}
	return out, err
}

func (e *etcdClient) record(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastErr = err
	if err == nil {
		e.lastOK = time.Now()
	}
}

// AddLearner adds a learner and returns its ID.
func (e *etcdClient) AddLearner(ctx context.Context, token uint64, peerURL string) (uint64, error) {
	etcdRequests.WithLabelValues("add_learner").Inc()
	cli, err := e.client()
	if err != nil {
		return 0, err
	}
	m, err := cli.AddLearner(ctx, token, peerURL)
	return m.ID, err
}

// Promote promotes a learner; a refusal because it is not in sync is a *NotInSyncError.
func (e *etcdClient) Promote(ctx context.Context, token, id uint64) error {
	etcdRequests.WithLabelValues("promote").Inc()
	cli, err := e.client()
	if err != nil {
		return err
	}
	return cli.Promote(ctx, token, id)
}

// Remove removes a member.
func (e *etcdClient) Remove(ctx context.Context, token, id uint64) error {
	etcdRequests.WithLabelValues("remove").Inc()
	cli, err := e.client()
	if err != nil {
		return err
	}
	return cli.Remove(ctx, token, id)
}

// MoveLeader hands leadership to member to.
func (e *etcdClient) MoveLeader(ctx context.Context, token, to uint64) error {
	etcdRequests.WithLabelValues("move_leader").Inc()
	cli, err := e.client()
	if err != nil {
		return err
	}
	return cli.MoveLeader(ctx, token, to)
}

// readyCheck is ready while etcd answers a member list.
func (e *etcdClient) readyCheck(req *http.Request) error {
	e.mu.Lock()
	empty := len(e.endpoints) == 0
	e.mu.Unlock()
	if empty && e.discover != nil {
		if eps := e.discover(req.Context()); len(eps) > 0 {
			e.SetEndpoints(eps)
		}
	}
	cli, err := e.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(req.Context(), 3*time.Second)
	defer cancel()
	_, err = cli.Members(ctx)
	return err
}

// Close closes the etcd client.
func (e *etcdClient) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli != nil {
		_ = e.cli.Close()
	}
}

// raftView reads, from the members' own status probes, the leader a healthy member names and
// each member's committed raft index.
func raftView(health []etcdmember.Health) (leader uint64, index map[uint64]uint64) {
	index = map[uint64]uint64{}
	for _, h := range health {
		if h.Status == nil {
			continue
		}
		index[h.ID] = h.Status.Index
		if h.Healthy && leader == 0 && h.Status.Leader != 0 {
			leader = h.Status.Leader
		}
	}
	return leader, index
}
