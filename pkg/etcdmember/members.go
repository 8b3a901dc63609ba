package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNotStarted: the member was added but has never run, so it has no endpoint to probe.
var ErrNotStarted = errors.New("member has not started")

// Status is a member's raft state as its own endpoint reports it.
type Status struct {
	Endpoint string
	ID       uint64
	Leader   uint64
	Term     uint64
	// Index is the member's committed raft index; Applied is how far it has applied it.
	Index, Applied uint64
	IsLearner      bool
	DBSize         int64
	// Errors are what etcd's Status puts there: "no leader" when the member knows none, and
	// every alarm active in the cluster as this member knows them, whichever member each is
	// for ("memberID:… alarm:NOSPACE"). They are not this member's own alarms: those come
	// from the alarm list (Member.Alarms).
	Errors []string
}

// Health is the result of one probe of a member through its own endpoint.
//
// A voting member is healthy when a linearizable Get through its endpoint succeeds: that
// needs the member to reach a leader that has quorum, which is what quorum math counts.
// Learners refuse linearizable reads, so a learner is healthy when its Status answers and
// names a leader. Both also read Status, for the raft state.
type Health struct {
	ID       uint64
	Endpoint string
	Healthy  bool
	// Status is nil when the Status call failed.
	Status *Status
	Took   time.Duration
	// Err says why the member is not healthy.
	Err error
}

// Members lists the members, linearizably. Healthy is false for all of them: see State.
func (c *Client) Members(ctx context.Context) ([]Member, error) { return c.members(ctx) }

func (c *Client) members(ctx context.Context, opts ...clientv3.OpOption) ([]Member, error) {
	var resp *clientv3.MemberListResponse
	err, last := call(ctx, c.cfg.CallTimeout, func(ctx context.Context) error {
		var err error
		resp, err = c.etcd.MemberList(ctx, opts...)
		return err
	})
	if err != nil {
		return nil, c.classify(ctx, Where{Op: "list members", Endpoint: c.where()}, err, last)
	}
	out := make([]Member, 0, len(resp.Members))
	for _, m := range resp.Members {
		out = append(out, Member{
			ID:         m.ID,
			Name:       m.Name,
			PeerURLs:   m.PeerURLs,
			ClientURLs: m.ClientURLs,
			IsLearner:  m.IsLearner,
			Started:    m.Name != "",
		})
	}
	return out, nil
}

// Health probes every member in parallel, each through its own first client URL and
// within the probe timeout. The result is in the order of members.
func (c *Client) Health(ctx context.Context, members []Member) []Health {
	out := make([]Health, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() { out[i] = c.probe(ctx, m) })
	}
	wg.Wait()
	return out
}

// State lists the members and probes them, with Healthy set from the probes.
//
// When the linearizable list fails, State asks any member for its own view of the
// membership and probes that. If fewer voting members than a quorum are healthy, it
// returns that view with a *NoQuorumError, so the caller can say quorum is lost rather
// than that etcd is unreachable. A view that could be stale is for reporting, never for
// acting on. Otherwise the list's own error is returned, with no members.
func (c *Client) State(ctx context.Context) ([]Member, []Health, error) {
	members, err := c.Members(ctx)
	if err != nil {
		// A rejected certificate says nothing about quorum. An unreachable endpoint may be
		// one dead member among live ones, so the others are still asked.
		var ce *CertificateError
		if errors.As(err, &ce) || ctx.Err() != nil {
			return nil, nil, err
		}
		return c.noQuorum(ctx, err)
	}
	health := c.probeAll(ctx, members)
	c.readAlarms(ctx, members)
	return members, health, nil
}

// readAlarms reads the cluster's alarm list once, within the call timeout, and gives each
// member its active alarms; a member with any is not Healthy. When the list cannot be read,
// every member's AlarmsUnread says why and its alarms are unknown, which holds every
// membership change (quorum.AlarmHold).
func (c *Client) readAlarms(ctx context.Context, members []Member) {
	var resp *clientv3.AlarmResponse
	err, last := call(ctx, c.cfg.CallTimeout, func(ctx context.Context) error {
		var err error
		resp, err = c.etcd.AlarmList(ctx)
		return err
	})
	if err != nil {
		why := c.classify(ctx, Where{Op: "list alarms", Endpoint: c.where()}, err, last).Error()
		for i := range members {
			members[i].AlarmsUnread = why
		}
		return
	}
	alarms := map[uint64][]string{}
	for _, a := range resp.Alarms {
		if a.Alarm != pb.AlarmType_NONE {
			alarms[a.MemberID] = append(alarms[a.MemberID], a.Alarm.String())
		}
	}
	for i := range members {
		m := &members[i]
		m.Alarms = alarms[m.ID]
		m.Healthy = m.Healthy && len(m.Alarms) == 0
	}
}

func (c *Client) probeAll(ctx context.Context, members []Member) []Health {
	health := c.Health(ctx, members)
	for i := range members {
		members[i].Healthy = health[i].Healthy
	}
	return health
}

// noQuorum reads one member's own view of the membership after the linearizable list
// failed with listErr, and returns it with a *NoQuorumError when its probes show quorum
// lost, or listErr alone.
func (c *Client) noQuorum(ctx context.Context, listErr error) ([]Member, []Health, error) {
	lctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
	members, err := c.members(lctx, clientv3.WithSerializable())
	cancel()
	if err != nil || len(members) == 0 {
		return nil, nil, listErr
	}
	health := c.probeAll(ctx, members)
	counts := Count(members)
	if counts.Healthy >= counts.Quorum {
		return nil, nil, listErr
	}
	answering := 0
	for i, m := range members {
		if !m.IsLearner && health[i].Status != nil {
			answering++
		}
	}
	return members, health, &NoQuorumError{Where: Where{Op: "list members", Endpoint: c.where()}, Counts: counts, Answering: answering, Err: listErr}
}

func (c *Client) probe(ctx context.Context, m Member) Health {
	h := Health{ID: m.ID}
	if !m.Started || len(m.ClientURLs) == 0 {
		h.Err = &CallError{Where{Op: "probe", Member: m.String()}, ErrNotStarted}
		return h
	}
	h.Endpoint = m.ClientURLs[0]
	start := time.Now()
	h.Err = c.onEndpoint(ctx, Where{Op: "probe", Endpoint: h.Endpoint, Member: m.String()}, c.cfg.ProbeTimeout,
		func(ctx context.Context, e endpointAPI) error {
			st, err := readStatus(ctx, e, h.Endpoint)
			if err != nil {
				return err
			}
			h.Status = &st
			if m.IsLearner {
				if st.Leader == 0 {
					return errNoLeader
				}
				return nil
			}
			_, err = e.Get(ctx, healthKey)
			return err
		})
	h.Healthy, h.Took = h.Err == nil, time.Since(start)
	return h
}

var errNoLeader = errors.New("learner knows no leader")

// Status reads a member's raft state through its own endpoint.
func (c *Client) Status(ctx context.Context, m Member) (Status, error) {
	if !m.Started || len(m.ClientURLs) == 0 {
		return Status{}, &CallError{Where{Op: "status", Member: m.String()}, ErrNotStarted}
	}
	ep := m.ClientURLs[0]
	var st Status
	err := c.onEndpoint(ctx, Where{Op: "status", Endpoint: ep, Member: m.String()}, c.cfg.ProbeTimeout,
		func(ctx context.Context, e endpointAPI) error {
			var err error
			st, err = readStatus(ctx, e, ep)
			return err
		})
	return st, err
}

func readStatus(ctx context.Context, e endpointAPI, ep string) (Status, error) {
	r, err := e.Status(ctx, ep)
	if err != nil {
		return Status{}, err
	}
	st := Status{Endpoint: ep, Leader: r.Leader, Term: r.RaftTerm, Index: r.RaftIndex, Applied: r.RaftAppliedIndex,
		IsLearner: r.IsLearner, DBSize: r.DbSize, Errors: r.Errors}
	if r.Header != nil {
		st.ID = r.Header.MemberId
	}
	return st, nil
}

// onEndpoint runs fn against one endpoint, classifying its error.
func (c *Client) onEndpoint(ctx context.Context, w Where, timeout time.Duration, fn func(context.Context, endpointAPI) error) error {
	e, done, err := c.open(w.Endpoint)
	if err != nil {
		return c.classify(ctx, w, err, nil)
	}
	defer done()
	err, last := call(ctx, timeout, func(ctx context.Context) error { return fn(ctx, e) })
	return c.classify(ctx, w, err, last)
}

// Progress is how far a learner's raft log has come against the leader's.
type Progress struct {
	Learner, Leader uint64
	// LearnerIndex and LearnerApplied are the learner's committed and applied indexes;
	// LeaderIndex is the leader's committed index.
	LearnerIndex, LearnerApplied, LeaderIndex uint64
}

// Ratio is LearnerIndex over LeaderIndex, at most 1. etcd promotes a learner once the
// entries it holds reach 90% of the leader's.
func (p Progress) Ratio() float64 {
	if p.LeaderIndex == 0 {
		return 0
	}
	return min(1, float64(p.LearnerIndex)/float64(p.LeaderIndex))
}

// CaughtUp says the learner has committed everything the leader had when asked.
func (p Progress) CaughtUp() bool { return p.LeaderIndex > 0 && p.LearnerIndex >= p.LeaderIndex }

func (p Progress) String() string {
	if p.Learner == 0 {
		return "progress unknown"
	}
	return fmt.Sprintf("learner %s at index %d (applied %d) of leader %s's %d, %.0f%%",
		strconv.FormatUint(p.Learner, 16), p.LearnerIndex, p.LearnerApplied, strconv.FormatUint(p.Leader, 16), p.LeaderIndex, 100*p.Ratio())
}

// Progress reads a learner's progress: its Status, then the Status of the leader it names.
func (c *Client) Progress(ctx context.Context, learner uint64) (Progress, error) {
	members, err := c.Members(ctx)
	if err != nil {
		return Progress{}, err
	}
	return c.progress(ctx, members, learner)
}

func (c *Client) progress(ctx context.Context, members []Member, learner uint64) (Progress, error) {
	l, ok := find(members, learner)
	if !ok {
		return Progress{}, &MemberNotFoundError{ID: learner, Endpoint: c.where()}
	}
	ls, err := c.Status(ctx, l)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{Learner: learner, Leader: ls.Leader, LearnerIndex: ls.Index, LearnerApplied: ls.Applied}
	lead, ok := find(members, ls.Leader)
	if !ok {
		return p, &CallError{Where{Op: "progress", Endpoint: ls.Endpoint, Member: l.String()},
			fmt.Errorf("learner names leader %x, which is not a listed member", ls.Leader)}
	}
	st, err := c.Status(ctx, lead)
	if err != nil {
		return p, err
	}
	p.LeaderIndex = st.Index
	return p, nil
}
