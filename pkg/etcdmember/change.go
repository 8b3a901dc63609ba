package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// Every change below fences with the caller's token (even when the call turns out to change
// nothing), then gathers the members and their health it decides on, refuses what
// CheckChange refuses, and only then asks etcd. The state is read after the fence, never
// before: a state read first could miss a change made by a leadership that passed the fence
// between that read and this fence.

// Guard is a change's own reason, checked once more on the members as observed after the
// fence (the member list joined with each member's probe, see JoinHealth). A change is
// decided on a state read before the fence; by the time the fence has passed, that reason
// may be gone (a learner that timed out answers again, a deleting Machine's member was
// removed by a newer leader). An error from a guard refuses the change with a *StaleError,
// and nothing is changed.
type Guard func(members []Observed) error

// AddLearner adds a learner with peerURL and returns it. A member that already has that
// peer URL, learner or not, is returned as it is.
func (c *Client) AddLearner(ctx context.Context, token uint64, peerURL string, guards ...Guard) (Member, error) {
	// The fence comes before even the no-op answer: a replica that lost its leadership learns
	// so on its next call, whatever that call would have done.
	members, _, err := c.fencedState(ctx, token, "add learner "+peerURL, guards)
	if err != nil {
		return Member{}, err
	}
	if m, ok := ByPeerURL(members, peerURL); ok {
		return m, nil
	}
	if err := CheckChange(members, Change{Kind: ChangeAddLearner}); err != nil {
		return Member{}, err
	}
	c.notify(ctx, "add learner", 0)
	var resp *clientv3.MemberAddResponse
	err, last := call(ctx, c.cfg.CallTimeout, func(ctx context.Context) error {
		var err error
		resp, err = c.etcd.MemberAddAsLearner(ctx, []string{peerURL})
		return err
	})
	if isServerError(err, rpctypes.ErrGRPCPeerURLExist) {
		if ms, lerr := c.Members(ctx); lerr == nil {
			if m, ok := ByPeerURL(ms, peerURL); ok {
				return m, nil
			}
		}
	}
	if refused := etcdRefusal(members, Change{Kind: ChangeAddLearner}, err); refused != nil {
		return Member{}, refused
	}
	if err != nil {
		return Member{}, c.classify(ctx, Where{Op: "add learner", Endpoint: c.where(), Member: peerURL}, err, last)
	}
	m := resp.Member
	return Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: true, Started: m.Name != ""}, nil
}

// fencedState passes the fence with token, then reads the members and their health and
// runs the change's guards on them: the prologue of every membership change. A fence that
// could not be written at all (not a refusal) is explained by State when quorum is lost:
// the *NoQuorumError is returned then.
func (c *Client) fencedState(ctx context.Context, token uint64, op string, guards []Guard) ([]Member, []Health, error) {
	members, health, err := c.fencedRead(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	var observed []Observed
	for _, g := range guards {
		if g == nil {
			continue
		}
		if observed == nil {
			observed = JoinHealth(members, health)
		}
		if err := g(observed); err != nil {
			return nil, nil, &StaleError{Op: op, Err: err}
		}
	}
	return members, health, nil
}

func (c *Client) fencedRead(ctx context.Context, token uint64) ([]Member, []Health, error) {
	if err := c.Fence(ctx, token); err != nil {
		var fe *FencedError
		if errors.As(err, &fe) || ctx.Err() != nil {
			return nil, nil, err
		}
		var nq *NoQuorumError
		if _, _, serr := c.State(ctx); errors.As(serr, &nq) {
			return nil, nil, serr
		}
		return nil, nil, err
	}
	return c.State(ctx)
}

// Promote makes learner id a voting member. Promoting a voter does nothing. A learner that
// has not committed, within the probe timeout, the index the leader reports after the fence
// is refused with a *NotInSyncError before etcd is asked (see connected); so is one etcd
// finds not in sync yet; see WaitPromote.
func (c *Client) Promote(ctx context.Context, token, id uint64, guards ...Guard) error {
	members, health, err := c.fencedState(ctx, token, fmt.Sprintf("promote %x", id), guards)
	if err != nil {
		return err
	}
	m, ok := find(members, id)
	if !ok {
		return &MemberNotFoundError{ID: id, Endpoint: c.where()}
	}
	if !m.IsLearner {
		return nil
	}
	if err := c.connected(ctx, health, m); err != nil {
		return err
	}
	if err := CheckChange(members, Change{Kind: ChangePromote, MemberID: id}); err != nil {
		return err
	}
	c.notify(ctx, "promote", id)
	err, last := call(ctx, c.cfg.CallTimeout, func(ctx context.Context) error {
		_, err := c.etcd.MemberPromote(ctx, id)
		return err
	})
	w := Where{Op: "promote", Endpoint: c.where(), Member: m.String()}
	refused := etcdRefusal(members, Change{Kind: ChangePromote, MemberID: id}, err)
	switch {
	case err == nil, isServerError(err, rpctypes.ErrGRPCMemberNotLearner):
		return nil
	case isServerError(err, rpctypes.ErrGRPCLearnerNotReady):
		p, _ := c.progress(ctx, members, id)
		return &NotInSyncError{Where: w, ID: id, Progress: p, Err: err}
	case isServerError(err, rpctypes.ErrGRPCMemberNotFound):
		return &MemberNotFoundError{ID: id, Endpoint: c.where()}
	case refused != nil:
		return refused
	default:
		return c.classify(ctx, w, err, last)
	}
}

// WaitPromote promotes learner id as soon as etcd allows. Every interval
// (DefaultPromoteInterval when 0) it reads the learner's progress through the learner's
// own endpoint, and once the learner holds 90% of the leader's index it asks for the
// promotion. A learner serves clients only once it has caught up with the cluster as it
// was when it joined; each read waits a little longer than the interval, so that a read is
// pending when the learner starts serving and answers at once. WaitPromote returns when
// the learner votes, on a refusal that waiting cannot cure (fenced, no such member,
// certificate rejected), or when ctx ends, with the last refusal.
func (c *Client) WaitPromote(ctx context.Context, token, id uint64, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultPromoteInterval
	}
	poll := min(max(4*interval, minProgressPoll), c.cfg.ProbeTimeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var members []Member
	var last error
	for {
		if members == nil {
			ms, err := c.Members(ctx)
			if err != nil {
				last = err
			}
			members = ms
		}
		if members != nil {
			m, ok := find(members, id)
			if !ok {
				return &MemberNotFoundError{ID: id, Endpoint: c.where()}
			}
			if !m.IsLearner {
				return nil
			}
			pctx, cancel := context.WithTimeout(ctx, poll)
			p, err := c.progress(pctx, members, id)
			cancel()
			switch {
			case err != nil:
				members, last = nil, err
			case p.Ratio() >= promoteAttemptThreshold:
				err := c.Promote(ctx, token, id)
				if err == nil || permanent(err) {
					return err
				}
				last = err
			default:
				last = &NotInSyncError{Where: Where{Op: "wait to promote", Endpoint: c.where(), Member: m.String()}, ID: id, Progress: p,
					Err: errors.New("learner below 90% of the leader's index")}
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return fmt.Errorf("learner %x not promoted: %w", id, ctx.Err())
			}
			return fmt.Errorf("learner %x not promoted: %w; last: %w", id, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func permanent(err error) bool {
	var (
		fe *FencedError
		ne *MemberNotFoundError
		ce *CertificateError
	)
	return errors.As(err, &fe) || errors.As(err, &ne) || errors.As(err, &ce)
}

// etcdRefusal turns etcd's own refusals of an unsafe change into an *UnsafeChangeError.
// With strict reconfiguration checks on, etcd refuses a change that would leave too few
// started members, or when the member handling it has not been connected to enough peers
// for the last 5 seconds; it allows one learner at a time by default.
func etcdRefusal(members []Member, c Change, err error) error {
	for _, r := range []error{rpctypes.ErrGRPCUnhealthy, rpctypes.ErrGRPCMemberNotEnoughStarted, rpctypes.ErrGRPCTooManyLearners} {
		if isServerError(err, r) {
			return &UnsafeChangeError{Change: c, Before: Count(members), After: Count(Apply(members, c)),
				Reason: "etcd refused: " + rpctypes.ErrorDesc(err), Passes: errors.Is(r, rpctypes.ErrGRPCUnhealthy)}
		}
	}
	return nil
}

// connected says learner l has committed the index its leader reports after the fence, as
// read in health. The fence is a write, so that index is one the learner can only hold if
// it received entries from the leader after the fence. A learner cut off from its leader
// still answers Status and keeps naming the old leader (a learner never campaigns), and
// etcd's own check looks only at what the leader last heard from it: promoted then, it
// would turn 3 reachable voters into 4 with 3 reachable, quorum 3, fault tolerance 0.
//
// The learner is asked until its index reaches the leader's or the probe timeout ends;
// a connected learner gets the entry with the leader's next append, within milliseconds.
func (c *Client) connected(ctx context.Context, health []Health, l Member) error {
	lead := leaderOf(health)
	var target uint64
	for _, h := range health {
		if h.ID == lead && h.Status != nil {
			target = h.Status.Index
		}
	}
	w := Where{Op: "promote", Endpoint: c.where(), Member: l.String()}
	p := Progress{Learner: l.ID, Leader: lead, LeaderIndex: target}
	if lead == 0 || target == 0 {
		return &NotInSyncError{Where: w, ID: l.ID, Progress: p, Err: errors.New("the leader's index could not be read after the fence")}
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
	defer cancel()
	tick := time.NewTicker(connectedPoll)
	defer tick.Stop()
	var last error
	for {
		st, err := c.Status(wctx, l)
		if err == nil {
			p.LearnerIndex, p.LearnerApplied = st.Index, st.Applied
			if st.Index >= target {
				return nil
			}
		} else {
			last = err
		}
		select {
		case <-wctx.Done():
			why := fmt.Errorf("the learner has not committed index %d, which leader %x reported after the fence, within %s: it is not receiving the leader's entries (cut off from the leader?)", target, lead, c.cfg.ProbeTimeout)
			if last != nil && p.LearnerIndex == 0 {
				why = fmt.Errorf("%w; its Status: %w", why, last)
			}
			return &NotInSyncError{Where: w, ID: l.ID, Progress: p, Err: why}
		case <-tick.C:
		}
	}
}

// Remove removes member id. A member that is not there counts as removed. The client's
// endpoints are left as they are: a caller that follows the membership calls Sync.
func (c *Client) Remove(ctx context.Context, token, id uint64, guards ...Guard) error {
	members, _, err := c.fencedState(ctx, token, fmt.Sprintf("remove %x", id), guards)
	if err != nil {
		return err
	}
	return c.remove(ctx, members, id)
}

// RemoveMember is Remove that first hands raft leadership to the most up-to-date healthy
// voting member when id leads, so that removing it costs no election. Only then is the fence
// passed twice: before the hand-over, and again before the state the removal is decided on
// is read after it.
func (c *Client) RemoveMember(ctx context.Context, token, id uint64, guards ...Guard) error {
	members, health, err := c.fencedState(ctx, token, fmt.Sprintf("remove %x", id), guards)
	if err != nil {
		return err
	}
	if m, ok := find(members, id); ok && !m.IsLearner && leaderOf(health) == id {
		if err := CheckChange(members, Change{Kind: ChangeRemove, MemberID: id}); err != nil {
			return err
		}
		to, ok := successor(members, health, id)
		if !ok {
			return &CallError{Where{Op: "remove", Endpoint: c.where(), Member: m.String()},
				errors.New("it leads and no other healthy voting member can take over")}
		}
		if err := c.moveLeader(ctx, members, health, to); err != nil {
			return err
		}
		if members, _, err = c.fencedState(ctx, token, fmt.Sprintf("remove %x", id), guards); err != nil {
			return err
		}
	}
	return c.remove(ctx, members, id)
}

// remove removes id as members, read after the caller passed the fence, show it: "not there"
// counts as removed, and what CheckChange refuses is refused.
func (c *Client) remove(ctx context.Context, members []Member, id uint64) error {
	m, ok := find(members, id)
	if !ok {
		return nil
	}
	if err := CheckChange(members, Change{Kind: ChangeRemove, MemberID: id}); err != nil {
		return err
	}
	c.notify(ctx, "remove", id)
	err, last := call(ctx, c.cfg.CallTimeout, func(ctx context.Context) error {
		_, err := c.etcd.MemberRemove(ctx, id)
		return err
	})
	if refused := etcdRefusal(members, Change{Kind: ChangeRemove, MemberID: id}, err); refused != nil {
		return refused
	}
	if err != nil && !isServerError(err, rpctypes.ErrGRPCMemberNotFound) {
		// The answer can be lost after etcd applied the removal: the member that handled
		// the request may be the one removed, which stops as it applies its own removal and
		// answers "server stopped"; a timeout can come after the commit. A member list read
		// now that no longer shows the member says it is removed, as "not there" does above.
		if after, lerr := c.members(ctx); lerr == nil {
			if _, listed := find(after, id); !listed {
				return nil
			}
		}
		return c.classify(ctx, Where{Op: "remove", Endpoint: c.where(), Member: m.String()}, err, last)
	}
	return nil
}

// MoveLeader hands raft leadership to voting member to. The request goes to the current
// leader's own endpoint, as etcd requires; it returns once to leads.
func (c *Client) MoveLeader(ctx context.Context, token, to uint64, guards ...Guard) error {
	members, health, err := c.fencedState(ctx, token, fmt.Sprintf("move leadership to %x", to), guards)
	if err != nil {
		return err
	}
	return c.moveLeader(ctx, members, health, to)
}

// moveLeader moves leadership to to; the caller has passed the fence.
func (c *Client) moveLeader(ctx context.Context, members []Member, health []Health, to uint64) error {
	t, ok := find(members, to)
	if !ok {
		return &MemberNotFoundError{ID: to, Endpoint: c.where()}
	}
	lead := leaderOf(health)
	if lead == to {
		return nil
	}
	w := Where{Op: "move leadership to " + t.String(), Endpoint: c.where()}
	switch hold := alarmHold(members); {
	case hold != "":
		return &CallError{w, errors.New(hold)}
	case t.IsLearner:
		return &CallError{w, errors.New("a learner cannot lead")}
	case !t.Healthy:
		return &CallError{w, errors.New("the target is not healthy")}
	case lead == 0:
		return &CallError{w, errors.New("no member names a leader")}
	}
	lm, ok := find(members, lead)
	if !ok || len(lm.ClientURLs) == 0 {
		return &CallError{w, fmt.Errorf("leader %x has no client URL", lead)}
	}
	w.Endpoint, w.Member = lm.ClientURLs[0], lm.String()
	c.notify(ctx, "move leader", to)
	return c.onEndpoint(ctx, w, c.cfg.CallTimeout, func(ctx context.Context, e endpointAPI) error {
		_, err := e.MoveLeader(ctx, to)
		return err
	})
}

// leaderOf is the leader named by the member reporting the highest term.
func leaderOf(health []Health) uint64 {
	var lead, term uint64
	for _, h := range health {
		if s := h.Status; s != nil && s.Leader != 0 && s.Term >= term {
			lead, term = s.Leader, s.Term
		}
	}
	return lead
}

// successor is the healthy voting member other than id that quorum.ChooseLeader picks: the
// most up to date (within quorum.LeaderIndexSlack of the highest raft index), then the name,
// then the ID. The planner's rule, which also leaves out the members of deleting Machines.
func successor(members []Member, health []Health, id uint64) (uint64, bool) {
	var cands []quorum.LeaderCandidate
	for i, m := range members {
		if m.ID == id || m.IsLearner || !m.Healthy || health[i].Status == nil {
			continue
		}
		cands = append(cands, quorum.LeaderCandidate{ID: m.ID, Name: m.Name, Index: health[i].Status.Index})
	}
	if i := quorum.ChooseLeader(cands); i >= 0 {
		return cands[i].ID, true
	}
	return 0, false
}

func (c *Client) notify(ctx context.Context, op string, id uint64) {
	if c.beforeChange != nil {
		c.beforeChange(ctx, op, id)
	}
}

// ByPeerURL finds the member listed at peerURL.
func ByPeerURL(members []Member, peerURL string) (Member, bool) {
	for _, m := range members {
		for _, u := range m.PeerURLs {
			if SamePeerURL(u, peerURL) {
				return m, true
			}
		}
	}
	return Member{}, false
}

// SamePeerURL compares two peer URLs by scheme, port and host, IP addresses as addresses.
func SamePeerURL(a, b string) bool {
	if a == b {
		return true
	}
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil || !strings.EqualFold(ua.Scheme, ub.Scheme) || ua.Port() != ub.Port() {
		return false
	}
	ha, errA := parseAddr(ua.Hostname())
	hb, errB := parseAddr(ub.Hostname())
	if errA == nil && errB == nil {
		return ha == hb
	}
	return strings.EqualFold(ua.Hostname(), ub.Hostname())
}
