package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// ViewConfig says how a View reaches etcd.
type ViewConfig struct {
	// Given are the endpoints the operator named (--etcd-endpoints); empty when none were.
	Given []string
	// Files are the client certificate, its key and the CA, read at every handshake.
	Files TLSFiles
	// Client configures the client the View makes; its Endpoints are ignored (see
	// chooseEndpoints).
	Client Config
	// Machines, when set, gives the control-plane Machines' etcd client URLs: the endpoints
	// before any member list has been read, and the fallback when every endpoint fails.
	Machines func(context.Context) []string
	// OnCall, when set, is told of each call made through the View, by operation
	// (observe, claim_token, add_learner, promote, remove, move_leader, fence).
	OnCall func(op string)
	// Log receives what a person should see: a fallback to the Machines' addresses, a
	// member list given up on because quorum is lost.
	Log logr.Logger
}

// View is a controller's one connection to etcd: it makes the client on first use, owns
// the endpoints it dials (chooseEndpoints is the only policy that sets them, re-applied
// after every member list read with quorum and every membership change), observes the
// members, makes the membership changes with their guards, and hands out fencing tokens.
type View struct {
	cfg ViewConfig

	mu  sync.Mutex
	cli *Client
	// endpoints are what the client dials, or will dial once made; base and added are the
	// choice they come from (see endpointChoice).
	endpoints, base, added []string
	// members is the last member list read with quorum, nil before the first.
	members []Member
}

// NewView returns a View; it connects on its first call.
func NewView(cfg ViewConfig) *View {
	cfg.Given = slices.Clone(cfg.Given)
	return &View{cfg: cfg}
}

const (
	// quickQuorumTimeout bounds the Status calls that may show quorum lost before the
	// member list's own deadline. A member that answers nothing within it, while the list
	// is pending too, is taken as not answering.
	quickQuorumTimeout = time.Second
	// followTimeout bounds the member list read after a membership change.
	followTimeout = 2 * time.Second
	// readyTimeout bounds the member list of a readiness check.
	readyTimeout = 3 * time.Second
)

// endpointInput is what the endpoint policy decides from.
type endpointInput struct {
	// Given are the operator's endpoints, empty when none were given.
	Given []string
	// Members is the last member list read with quorum, nil before the first.
	Members []Member
	// Machines gives the control-plane Machines' addresses; it is asked only when needed,
	// and may be nil.
	Machines func() []string
	// Base and Added are the previous choice's.
	Base, Added []string
	// Failed, when not nil, are the endpoints that were dialled when every one of them was
	// found unreachable.
	Failed []string
}

// endpointChoice is what the client dials: Dial is Base followed by Added.
type endpointChoice struct {
	Dial []string
	// Base is the endpoints the policy chose; Added are Machines' addresses that a fallback
	// put beside them.
	Base, Added []string
	// Extra are the Machines' addresses this choice added after every endpoint failed.
	Extra []string
}

// chooseEndpoints is the one endpoint policy: which client URLs the etcd client dials.
//
// The base is, in this order:
//   - the endpoints given (--etcd-endpoints), whenever any were: the operator's choice (a
//     load balancer, a proxy, another port) is always what is dialled, whatever the
//     membership or the Machines say;
//   - otherwise the client URLs of the started voting members of the last member list read
//     with quorum (ClientURLs), so that the client follows the membership and outlives
//     every original member; a list read without quorum may be stale and moves nothing;
//   - otherwise, before any such list, the control-plane Machines' addresses.
//
// When that comes out empty (no Machine has an address, no member a client URL), the
// previous base stays.
//
// When every endpoint dialled has just failed (Failed), the Machines' addresses not yet
// dialled are added beside the base, never in place of it: a given endpoint is never
// dropped. They stay for as long as the base is unchanged, which for given endpoints is
// for good, and go with the next base that differs.
func chooseEndpoints(in endpointInput) endpointChoice {
	var machines []string
	asked := false
	ask := func() []string {
		if !asked && in.Machines != nil {
			machines, asked = in.Machines(), true
		}
		return machines
	}
	var base []string
	switch {
	case len(in.Given) > 0:
		base = in.Given
	case in.Members != nil:
		base = ClientURLs(in.Members)
	default:
		base = ask()
	}
	if len(base) == 0 {
		base = in.Base
	}
	out := endpointChoice{Base: slices.Clone(base)}
	if slices.Equal(out.Base, in.Base) {
		out.Added = slices.Clone(in.Added)
	}
	out.Dial = joinEndpoints(out.Base, out.Added)
	if in.Failed == nil {
		return out
	}
	for _, ep := range ask() {
		if !slices.Contains(in.Failed, ep) && !slices.Contains(out.Dial, ep) && !slices.Contains(out.Extra, ep) {
			out.Extra = append(out.Extra, ep)
		}
	}
	out.Added = append(out.Added, out.Extra...)
	out.Dial = append(out.Dial, out.Extra...)
	return out
}

// joinEndpoints is a, then the endpoints of b that a does not hold.
func joinEndpoints(a, b []string) []string {
	out := slices.Clone(a)
	for _, ep := range b {
		if !slices.Contains(out, ep) {
			out = append(out, ep)
		}
	}
	return out
}

// input is the policy's input as the View stands; failed as in endpointInput.
func (v *View) input(ctx context.Context, failed []string) endpointInput {
	v.mu.Lock()
	defer v.mu.Unlock()
	in := endpointInput{Given: v.cfg.Given, Members: v.members, Base: v.base, Added: v.added, Failed: failed}
	if v.cfg.Machines != nil {
		in.Machines = func() []string { return v.cfg.Machines(ctx) }
	}
	return in
}

// apply makes c what the client dials.
func (v *View) apply(c endpointChoice) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.base, v.added = c.Base, c.Added
	if len(c.Dial) == 0 || slices.Equal(c.Dial, v.endpoints) {
		return
	}
	v.endpoints = c.Dial
	if v.cli != nil {
		v.cli.SetEndpoints(c.Dial...)
	}
}

// repoint applies the endpoint policy to what the View knows now.
func (v *View) repoint(ctx context.Context) { v.apply(chooseEndpoints(v.input(ctx, nil))) }

// client returns the etcd client, made on first use.
func (v *View) client(ctx context.Context) (*Client, error) {
	v.mu.Lock()
	cli, empty := v.cli, len(v.endpoints) == 0
	v.mu.Unlock()
	if cli != nil {
		return cli, nil
	}
	if empty {
		v.repoint(ctx)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cli != nil {
		return v.cli, nil
	}
	if len(v.endpoints) == 0 {
		return nil, errors.New("no etcd endpoints: none were given and no control-plane Machine has an InternalIP")
	}
	cfg := v.cfg.Client
	cfg.Endpoints = slices.Clone(v.endpoints)
	cli, err := NewFromFiles(cfg, v.cfg.Files)
	if err != nil {
		return nil, err
	}
	v.cli = cli
	return cli, nil
}

func (v *View) count(op string) {
	if v.cfg.OnCall != nil {
		v.cfg.OnCall(op)
	}
}

// Observe lists the members and probes each through its own endpoint; the leader and each
// learner's progress come from those probes' raft status. With quorum lost it returns one
// member's own view of the membership together with the *NoQuorumError.
//
// A linearizable list only fails on its deadline once quorum is gone (5 s, then the probes
// take theirs), so meanwhile the members of the last list are asked for their Status, which
// each answers on its own within milliseconds. When fewer voting members than a quorum
// answer within quickQuorumTimeout, the list is not waited for: quorum is reported lost
// from that view at once (reported only, never acted on, as always with quorum lost).
//
// A list read with quorum becomes the one the endpoints follow.
func (v *View) Observe(ctx context.Context) ([]Observed, error) {
	v.count("observe")
	v.repoint(ctx)
	var members []Member
	var health []Health
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	listed := make(chan error, 1)
	go func() {
		listed <- v.withFallback(lctx, func(cli *Client) error {
			var err error
			members, health, err = cli.State(lctx)
			return err
		})
	}()
	quick := make(chan *quickView, 1)
	if known := v.known(); len(known) > 0 {
		go func() { quick <- v.quorumAnswers(lctx, known) }()
	}
	var err error
	select {
	case err = <-listed:
	case q := <-quick:
		if q == nil {
			err = <-listed
			break
		}
		cancel()
		if lerr := <-listed; lerr != nil {
			v.cfg.Log.V(1).Info("member list cancelled: quorum is lost", "error", lerr.Error())
		}
		members, health, err = q.members, q.health, q.err
	}
	var nq *NoQuorumError
	if err != nil && !errors.As(err, &nq) {
		return nil, err
	}
	if err == nil {
		v.setKnown(members)
		v.repoint(ctx)
	}
	observed := JoinHealth(members, health)
	if err == nil {
		v.readSnapshotSends(ctx, observed, health)
	}
	return observed, err
}

// readSnapshotSends asks the leader, when a learner has not shown it holds the leader's
// index, what it reports of the snapshots it sends, and sets each such learner's Snapshot.
// A learner neither answers nor advances while it receives the snapshot it joined with;
// this is what shows it is not stuck. A leader whose metrics cannot be read leaves Snapshot
// nil: the learner is judged by its own answers alone, as before.
func (v *View) readSnapshotSends(ctx context.Context, observed []Observed, health []Health) {
	var leader *Observed
	behind := false
	for i := range observed {
		o := &observed[i]
		if o.Leader {
			leader = o
		}
		behind = behind || o.IsLearner && !caughtUp(o)
	}
	if !behind || leader == nil || len(leader.ClientURLs) == 0 {
		return
	}
	cli, err := v.client(ctx)
	if err != nil {
		return
	}
	v.count("snapshot_sends")
	sends, err := cli.SnapshotSends(ctx, leader.ClientURLs[0])
	if err != nil {
		v.cfg.Log.V(1).Info("could not read the leader's snapshot sends; learners are judged by their index alone", "leader", leader.ID, "error", err.Error())
		return
	}
	var bytes int64
	for _, h := range health {
		if h.ID == leader.ID && h.Status != nil {
			bytes = h.Status.DBSize
		}
	}
	for i := range observed {
		o := &observed[i]
		if o.IsLearner && !caughtUp(o) {
			s := sends[o.ID]
			s.Bytes = bytes
			o.Snapshot = &s
		}
	}
}

type quickView struct {
	members []Member
	health  []Health
	err     error
}

// quorumAnswers asks every started voting member of known for its Status. It returns nil
// while a quorum of them answer, and otherwise their view with a *NoQuorumError: a member
// that answers counts as healthy only when it names a leader.
func (v *View) quorumAnswers(ctx context.Context, known []Member) *quickView {
	cli, err := v.client(ctx)
	if err != nil {
		return nil
	}
	qctx, cancel := context.WithTimeout(ctx, quickQuorumTimeout)
	defer cancel()
	members := slices.Clone(known)
	health := make([]Health, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			health[i] = Health{ID: m.ID}
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
	counts := Count(members)
	if answering >= counts.Quorum {
		return nil
	}
	return &quickView{members: members, health: health, err: &NoQuorumError{
		Where: Where{Op: "status of every member", Endpoint: strings.Join(cli.Endpoints(), ",")}, Counts: counts, Answering: answering,
		Err: fmt.Errorf("only %d of %d voting members answered their Status within %s, below the quorum of %d; the member list was not waited for", answering, counts.Voters, quickQuorumTimeout, counts.Quorum)}}
}

// known is the last member list read with quorum.
func (v *View) known() []Member {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.members
}

func (v *View) setKnown(members []Member) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.members = slices.Clone(members)
}

// unreachable says err means no known endpoint answered: not a rejected certificate, not a
// cluster that answered without quorum.
func unreachable(err error) bool {
	var (
		nq *NoQuorumError
		ce *CertificateError
		ue *UnreachableError
		te *TimeoutError
	)
	if errors.As(err, &nq) || errors.As(err, &ce) {
		return false
	}
	return errors.As(err, &ue) || errors.As(err, &te)
}

// withFallback runs fn. When every endpoint dialled is unreachable, it applies the policy's
// fallback (the Machines' addresses that are not among them, added beside them) and runs
// fn once more; when there are none to add, or that fails too, the error says which
// endpoints were tried.
func (v *View) withFallback(ctx context.Context, fn func(*Client) error) error {
	cli, err := v.client(ctx)
	if err != nil {
		return err
	}
	err = fn(cli)
	if !unreachable(err) || v.cfg.Machines == nil || ctx.Err() != nil {
		return err
	}
	known := cli.Endpoints()
	choice := chooseEndpoints(v.input(ctx, known))
	if len(choice.Extra) == 0 {
		return fmt.Errorf("every etcd endpoint failed (%s), and the control-plane Machines' addresses add none: %w", strings.Join(known, ","), err)
	}
	v.cfg.Log.Error(err, "every etcd endpoint failed; trying the control-plane Machines' addresses as well", "failed", known, "machines", choice.Extra, "given", v.cfg.Given)
	v.apply(choice)
	if err := fn(cli); err != nil {
		return fmt.Errorf("every etcd endpoint failed, the known ones (%s) and the control-plane Machines' addresses (%s): %w",
			strings.Join(known, ","), strings.Join(choice.Extra, ","), err)
	}
	return nil
}

// follow reads the member list again after a membership change and applies the endpoint
// policy to it. When it cannot be read, a removed member (removed, not 0) leaves the last
// list read with quorum all the same, so that its client URLs are no longer dialled.
func (v *View) follow(ctx context.Context, cli *Client, removed uint64) {
	lctx, cancel := context.WithTimeout(ctx, followTimeout)
	members, err := cli.Members(lctx)
	cancel()
	v.mu.Lock()
	switch {
	case err == nil:
		v.members = members
	case removed != 0 && v.members != nil:
		v.members = slices.DeleteFunc(slices.Clone(v.members), func(m Member) bool { return m.ID == removed })
	}
	v.mu.Unlock()
	v.repoint(ctx)
}

// ClaimToken claims a fencing token from the etcd fence (see Client.ClaimToken).
func (v *View) ClaimToken(ctx context.Context, floor uint64) (uint64, error) {
	v.count("claim_token")
	var token uint64
	err := v.withFallback(ctx, func(cli *Client) error {
		var err error
		token, err = cli.ClaimToken(ctx, floor)
		return err
	})
	return token, err
}

// AddLearner adds a learner and returns its ID (see Client.AddLearner).
func (v *View) AddLearner(ctx context.Context, token uint64, peerURL string, still Guard) (uint64, error) {
	v.count("add_learner")
	cli, err := v.client(ctx)
	if err != nil {
		return 0, err
	}
	m, err := cli.AddLearner(ctx, token, peerURL, still)
	if err == nil {
		v.follow(ctx, cli, 0)
	}
	return m.ID, err
}

// Promote promotes a learner; a refusal because it is not in sync is a *NotInSyncError.
func (v *View) Promote(ctx context.Context, token, id uint64, still Guard) error {
	v.count("promote")
	cli, err := v.client(ctx)
	if err != nil {
		return err
	}
	err = cli.Promote(ctx, token, id, still)
	if err == nil {
		v.follow(ctx, cli, 0)
	}
	return err
}

// Remove removes a member.
func (v *View) Remove(ctx context.Context, token, id uint64, still Guard) error {
	v.count("remove")
	cli, err := v.client(ctx)
	if err != nil {
		return err
	}
	err = cli.Remove(ctx, token, id, still)
	if err == nil {
		v.follow(ctx, cli, id)
	}
	return err
}

// MoveLeader hands leadership to member to.
func (v *View) MoveLeader(ctx context.Context, token, to uint64, still Guard) error {
	v.count("move_leader")
	cli, err := v.client(ctx)
	if err != nil {
		return err
	}
	return cli.MoveLeader(ctx, token, to, still)
}

// Fence passes the fence with token: quorum is there and no newer leadership has passed it.
func (v *View) Fence(ctx context.Context, token uint64) error {
	v.count("fence")
	cli, err := v.client(ctx)
	if err != nil {
		return err
	}
	return cli.Fence(ctx, token)
}

// Ready says etcd answers a member list within readyTimeout.
func (v *View) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return v.withFallback(ctx, func(cli *Client) error {
		_, err := cli.Members(ctx)
		return err
	})
}

// Close closes the etcd client, if one was made.
func (v *View) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cli != nil {
		_ = v.cli.Close()
	}
}

// caughtUp says a member answered holding at least the leader's index (quorum's rule).
func caughtUp(o *Observed) bool {
	return quorum.LearnerReading{Answered: o.Answered, Index: o.Index, LeaderIndex: o.LeaderIndex}.CaughtUp()
}
