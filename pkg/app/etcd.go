package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

// etcdClient adapts etcdmember.Client to the controller's Etcd interface. The etcd client is
// made on first use, because with no endpoints given they come from the Machines.
//
// Endpoints given by --etcd-endpoints are the operator's choice and are always dialled: the
// reconciler's SetEndpoints (the Machines' addresses before a member list is known, the
// members' client URLs after) changes nothing then, and a membership change that moves the
// client's endpoints is undone. Only when nothing is given do the endpoints come from the
// Machines and then follow the membership. Either way, when every known endpoint is
// unreachable, a call is tried once more with the Machines' addresses added; those stay
// beside the known ones (a given endpoint is never dropped).
type etcdClient struct {
	files etcdmember.TLSFiles
	// cfg is the client's configuration but for its endpoints.
	cfg etcdmember.Config
	log logr.Logger

	mu  sync.Mutex
	cli *etcdmember.Client
	// given are the endpoints of --etcd-endpoints, empty when none were given.
	given []string
	// endpoints are what the client dials: given, or the latest SetEndpoints, plus the
	// Machines' addresses once every one of them failed.
	endpoints []string
	lastOK    time.Time
	lastErr   error
	// lastMembers is the last member list read with quorum (Observe).
	lastMembers []etcdmember.Member
	// discover, when set, gives endpoints from the Machines for a client that has none yet,
	// or whose endpoints all failed.
	discover func(context.Context) []string
}

var _ controlplane.Etcd = (*etcdClient)(nil)

func newEtcdClient(endpoints []string, ca, cert, key string) (*etcdClient, error) {
	for flag, f := range map[string]string{"--etcd-ca-file": ca, "--etcd-cert-file": cert, "--etcd-key-file": key} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
	}
	return &etcdClient{files: etcdmember.TLSFiles{CA: ca, Cert: cert, Key: key}, log: ctrl.Log.WithName("etcd"),
		given: slices.Clone(endpoints), endpoints: slices.Clone(endpoints)}, nil
}

// client returns the etcd client, made on first use; with no endpoints yet it asks the
// Machines for theirs.
func (e *etcdClient) client(ctx context.Context) (*etcdmember.Client, error) {
	e.mu.Lock()
	cli, empty := e.cli, len(e.endpoints) == 0
	e.mu.Unlock()
	if cli != nil {
		return cli, nil
	}
	if empty && e.discover != nil {
		if eps := e.discover(ctx); len(eps) > 0 {
			e.SetEndpoints(eps)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli != nil {
		return e.cli, nil
	}
	if len(e.endpoints) == 0 {
		return nil, errors.New("no etcd endpoints: none were given and no control-plane Machine has an InternalIP")
	}
	cfg := e.cfg
	cfg.Endpoints = slices.Clone(e.endpoints)
	cli, err := etcdmember.NewFromFiles(cfg, e.files)
	if err != nil {
		return nil, err
	}
	e.cli = cli
	return cli, nil
}

// SetEndpoints points the client at endpoints, unless endpoints were given: those stay.
func (e *etcdClient) SetEndpoints(endpoints []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.given) > 0 || slices.Equal(endpoints, e.endpoints) {
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
//
// A linearizable list only fails on its deadline once quorum is gone (5 s, then the probes
// take theirs), so meanwhile the members of the last list are asked for their Status, which
// each answers on its own within milliseconds. When fewer voting members than a quorum
// answer within quickQuorumTimeout, the list is not waited for: quorum is reported lost
// from that view at once (reported only, never acted on, as always with quorum lost).
func (e *etcdClient) Observe(ctx context.Context) ([]controlplane.EtcdMember, error) {
	etcdRequests.WithLabelValues("observe").Inc()
	var members []etcdmember.Member
	var health []etcdmember.Health
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	listed := make(chan error, 1)
	go func() {
		listed <- e.withFallback(lctx, func(cli *etcdmember.Client) error {
			var err error
			members, health, err = cli.State(lctx)
			return err
		})
	}()
	quick := make(chan *quickView, 1)
	if known := e.known(); len(known) > 0 {
		go func() { quick <- e.quorumAnswers(lctx, known) }()
	}
	var err error
	select {
	case err = <-listed:
	case v := <-quick:
		if v == nil {
			err = <-listed
			break
		}
		cancel()
		if lerr := <-listed; lerr != nil {
			e.log.V(1).Info("member list cancelled: quorum is lost", "error", lerr.Error())
		}
		members, health, err = v.members, v.health, v.err
	}
	e.record(err)
	var nq *etcdmember.NoQuorumError
	if err != nil && !errors.As(err, &nq) {
		return nil, err
	}
	if err == nil {
		e.setKnown(members)
	}
	return controlplane.Observed(members, health), err
}

// quickQuorumTimeout bounds the Status calls that may show quorum lost before the member
// list's own deadline. A member that answers nothing within it, while the list is pending
// too, is taken as not answering.
const quickQuorumTimeout = time.Second

type quickView struct {
	members []etcdmember.Member
	health  []etcdmember.Health
	err     error
}

// quorumAnswers asks every started voting member of known for its Status. It returns nil
// while a quorum of them answer, and otherwise their view with a *etcdmember.NoQuorumError:
// a member that answers counts as healthy only when it names a leader.
func (e *etcdClient) quorumAnswers(ctx context.Context, known []etcdmember.Member) *quickView {
	cli, err := e.client(ctx)
	if err != nil {
		return nil
	}
	qctx, cancel := context.WithTimeout(ctx, quickQuorumTimeout)
	defer cancel()
	members := slices.Clone(known)
	health := make([]etcdmember.Health, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			health[i] = etcdmember.Health{ID: m.ID}
			st, err := cli.Status(qctx, m)
			if err != nil {
				health[i].Err = err
				return
			}
			health[i].Status = &st
			health[i].Healthy = st.Leader != 0
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	answering := 0
	for i := range members {
		members[i].Healthy = health[i].Healthy
		if !members[i].IsLearner && health[i].Status != nil {
			answering++
		}
	}
	counts := etcdmember.Count(members)
	if answering >= counts.Quorum {
		return nil
	}
	return &quickView{members: members, health: health, err: &etcdmember.NoQuorumError{
		Where: etcdmember.Where{Op: "status of every member", Endpoint: strings.Join(cli.Endpoints(), ",")}, Counts: counts, Answering: answering,
		Err: fmt.Errorf("only %d of %d voting members answered their Status within %s, below the quorum of %d; the member list was not waited for", answering, counts.Voters, quickQuorumTimeout, counts.Quorum)}}
}

// known is the last member list read with quorum.
func (e *etcdClient) known() []etcdmember.Member {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastMembers
}

func (e *etcdClient) setKnown(members []etcdmember.Member) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastMembers = slices.Clone(members)
}

// unreachable says err means no known endpoint answered: not a rejected certificate, not a
// cluster that answered without quorum.
func unreachable(err error) bool {
	var (
		nq *etcdmember.NoQuorumError
		ce *etcdmember.CertificateError
		ue *etcdmember.UnreachableError
		te *etcdmember.TimeoutError
	)
	if errors.As(err, &nq) || errors.As(err, &ce) {
		return false
	}
	return errors.As(err, &ue) || errors.As(err, &te)
}

// withFallback runs fn. When every known endpoint is unreachable, it adds the Machines'
// addresses that are not among them and runs fn once more; when there are none to add, or
// that fails too, the error says which endpoints were tried.
func (e *etcdClient) withFallback(ctx context.Context, fn func(*etcdmember.Client) error) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	err = fn(cli)
	if !unreachable(err) || e.discover == nil || ctx.Err() != nil {
		return err
	}
	known := cli.Endpoints()
	var extra []string
	for _, ep := range e.discover(ctx) {
		if !slices.Contains(known, ep) {
			extra = append(extra, ep)
		}
	}
	if len(extra) == 0 {
		return fmt.Errorf("every etcd endpoint failed (%s), and the control-plane Machines' addresses add none: %w", strings.Join(known, ","), err)
	}
	e.log.Error(err, "every etcd endpoint failed; trying the control-plane Machines' addresses as well", "failed", known, "machines", extra, "given", e.given)
	e.mu.Lock()
	e.endpoints = append(slices.Clone(known), extra...)
	cli.SetEndpoints(e.endpoints...)
	e.mu.Unlock()
	if err := fn(cli); err != nil {
		return fmt.Errorf("every etcd endpoint failed, the known ones (%s) and the control-plane Machines' addresses (%s): %w",
			strings.Join(known, ","), strings.Join(extra, ","), err)
	}
	return nil
}

// keepGiven undoes what a membership change did to the client's endpoints (it drops a
// removed member's URLs and moves to the members' URLs after a change) when endpoints were
// given.
func (e *etcdClient) keepGiven(cli *etcdmember.Client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.given) > 0 && !slices.Equal(cli.Endpoints(), e.endpoints) {
		cli.SetEndpoints(e.endpoints...)
	}
}

// ClaimToken claims a fencing token from the etcd fence (see etcdmember.Client.ClaimToken).
func (e *etcdClient) ClaimToken(ctx context.Context, floor uint64) (uint64, error) {
	etcdRequests.WithLabelValues("claim_token").Inc()
	var token uint64
	err := e.withFallback(ctx, func(cli *etcdmember.Client) error {
		var err error
		token, err = cli.ClaimToken(ctx, floor)
		return err
	})
	return token, err
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
func (e *etcdClient) AddLearner(ctx context.Context, token uint64, peerURL string, still controlplane.Recheck) (uint64, error) {
	etcdRequests.WithLabelValues("add_learner").Inc()
	cli, err := e.client(ctx)
	if err != nil {
		return 0, err
	}
	defer e.keepGiven(cli)
	m, err := cli.AddLearner(ctx, token, peerURL, guard(still))
	return m.ID, err
}

// Promote promotes a learner; a refusal because it is not in sync is a *NotInSyncError.
func (e *etcdClient) Promote(ctx context.Context, token, id uint64, still controlplane.Recheck) error {
	etcdRequests.WithLabelValues("promote").Inc()
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	defer e.keepGiven(cli)
	return cli.Promote(ctx, token, id, guard(still))
}

// Remove removes a member.
func (e *etcdClient) Remove(ctx context.Context, token, id uint64, still controlplane.Recheck) error {
	etcdRequests.WithLabelValues("remove").Inc()
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	defer e.keepGiven(cli)
	return cli.Remove(ctx, token, id, guard(still))
}

// MoveLeader hands leadership to member to.
func (e *etcdClient) MoveLeader(ctx context.Context, token, to uint64, still controlplane.Recheck) error {
	etcdRequests.WithLabelValues("move_leader").Inc()
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	defer e.keepGiven(cli)
	return cli.MoveLeader(ctx, token, to, guard(still))
}

// Fence passes the fence with token: quorum is there and no newer leadership has passed it.
func (e *etcdClient) Fence(ctx context.Context, token uint64) error {
	etcdRequests.WithLabelValues("fence").Inc()
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	defer e.keepGiven(cli)
	return cli.Fence(ctx, token)
}

// guard turns the controller's recheck into the etcd client's guard, over the same view of
// the members the controller observes.
func guard(still controlplane.Recheck) etcdmember.Guard {
	if still == nil {
		return nil
	}
	return func(members []etcdmember.Member, health []etcdmember.Health) error {
		return still(controlplane.Observed(members, health))
	}
}

// readyCheck is ready while etcd answers a member list.
func (e *etcdClient) readyCheck(req *http.Request) error {
	ctx, cancel := context.WithTimeout(req.Context(), 3*time.Second)
	defer cancel()
	return e.withFallback(ctx, func(cli *etcdmember.Client) error {
		_, err := cli.Members(ctx)
		return err
	})
}

// Close closes the etcd client.
func (e *etcdClient) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli != nil {
		_ = e.cli.Close()
	}
}
