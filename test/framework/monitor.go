package framework

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// QuorumMonitor samples the membership every 100 ms, and is the "quorum never fell" check
// of the end-to-end tests. A sample is below quorum when any of these fails:
//   - a linearizable read through the cluster (any running member) within the deadline;
//   - the member list, asked of every running member at once, within the deadline (a list
//     that cannot be read is never replaced by the last one seen);
//   - enough healthy voting members: a voting member is healthy only when a linearizable
//     read through its own endpoint succeeds within the deadline, which a member cut off from
//     the leader, or with no leader, cannot do, though it still answers Status.
//
// Members are probed concurrently, so one slow member does not stretch a sample. Every
// sample below quorum is recorded, with its time and the faults in force then.
type QuorumMonitor struct {
	opts   MonitorOptions
	cancel context.CancelFunc
	done   chan struct{}

	mu              sync.Mutex
	conns           *endpointClients
	samples         int
	minVoters       int
	minHealthy      int
	maxLearners     int
	maxMembers      int
	losses          []LossSample
	minTolerance    int
	changes         int
	lastFingerprint string
	leaderChanges   []uint64
	listMisses      int
	lastList        *clientv3.MemberListResponse
}

// MonitorOptions shape a QuorumMonitor.
type MonitorOptions struct {
	Endpoints func() []string
	TLS       *tls.Config
	// Deadline bounds each probe; 2 s when zero.
	Deadline time.Duration
	// Faults, when set, describes the faults in force, for the record of a loss.
	Faults func() string
	// StatusProbe is this monitor as it once was: a member is healthy when it answers
	// Status, there is no read through the cluster, and a member list that cannot be read is
	// replaced by the last one. A deliberately weak check, for showing that the default one
	// is not fooled.
	StatusProbe bool
}

// StartQuorumMonitor starts sampling the cluster until Stop.
func (c *Cluster) StartQuorumMonitor(ctx context.Context) (*QuorumMonitor, error) {
	tc, err := c.Net.ClientTLS()
	if err != nil {
		return nil, err
	}
	return StartMonitor(ctx, MonitorOptions{Endpoints: c.Agent.RunningEndpoints, TLS: tc, Faults: c.Net.Faults})
}

// StartMonitor starts sampling until Stop.
func StartMonitor(ctx context.Context, opts MonitorOptions) (*QuorumMonitor, error) {
	if opts.Deadline == 0 {
		opts.Deadline = 2 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &QuorumMonitor{opts: opts, cancel: cancel, done: make(chan struct{}), conns: newEndpointClients(opts.TLS),
		minVoters: 1 << 30, minHealthy: 1 << 30, minTolerance: 1 << 30}
	go m.run(ctx)
	return m, nil
}

func (m *QuorumMonitor) run(ctx context.Context) {
	defer close(m.done)
	defer m.conns.close()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		m.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readThrough is a linearizable read through one endpoint within the deadline.
func (m *QuorumMonitor) readThrough(ctx context.Context, ep string) error {
	c, err := m.conns.get(ep)
	if err != nil {
		return err
	}
	if m.opts.StatusProbe {
		rctx, cancel := context.WithTimeout(ctx, m.opts.Deadline)
		defer cancel()
		_, err = c.Status(rctx, ep)
		return err
	}
	return readOwn(ctx, c, m.opts.Deadline)
}

// readOwn is the test of a healthy member: a linearizable read through a client that dials
// that member alone, within deadline. It needs the member connected to a leader that has
// quorum, which a member that is frozen, cut off, stalled or whose raft loop has died is not,
// though its process runs and it may still answer Status.
func readOwn(ctx context.Context, c *clientv3.Client, deadline time.Duration) error {
	rctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	_, err := c.Get(rctx, "/quorumguard-monitor")
	return err
}

// MemberProbe asks members questions each through its own client endpoint, with the
// monitor's test of health (a linearizable read through that member alone), keeping one
// client per endpoint until Close.
type MemberProbe struct {
	conns    *endpointClients
	deadline time.Duration
}

// NewMemberProbe returns a probe whose every call is bounded by deadline.
func NewMemberProbe(tc *tls.Config, deadline time.Duration) *MemberProbe {
	return &MemberProbe{conns: newEndpointClients(tc), deadline: deadline}
}

// Read is a linearizable read through ep alone.
func (p *MemberProbe) Read(ctx context.Context, ep string) error {
	c, err := p.conns.get(ep)
	if err != nil {
		return err
	}
	return readOwn(ctx, c, p.deadline)
}

// MemberList is the member list as the member behind ep gives it. After a successful Read
// through the same member it shows every membership change committed before that read.
func (p *MemberProbe) MemberList(ctx context.Context, ep string) (*clientv3.MemberListResponse, error) {
	c, err := p.conns.get(ep)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, p.deadline)
	defer cancel()
	return c.MemberList(lctx)
}

// Close closes every client the probe opened.
func (p *MemberProbe) Close() { p.conns.close() }

// memberList asks every endpoint at once and takes the first answer.
func (m *QuorumMonitor) memberList(ctx context.Context, eps []string) (*clientv3.MemberListResponse, error) {
	var list *clientv3.MemberListResponse
	err := m.anyOf(ctx, eps, func(ctx context.Context, c *clientv3.Client) error {
		l, err := c.MemberList(ctx)
		if err == nil {
			m.mu.Lock()
			if list == nil {
				list = l
			}
			m.mu.Unlock()
		}
		return err
	})
	return list, err
}

// anyOf calls fn through every endpoint at once, within the deadline, and succeeds when one
// call does: what a client that fails over to another member would see, without waiting for
// a timeout first.
func (m *QuorumMonitor) anyOf(ctx context.Context, eps []string, fn func(context.Context, *clientv3.Client) error) error {
	cctx, cancel := context.WithTimeout(ctx, m.opts.Deadline)
	defer cancel()
	errs := make(chan error, len(eps))
	for _, ep := range eps {
		go func() {
			c, err := m.conns.get(ep)
			if err == nil {
				err = fn(cctx, c)
			}
			errs <- err
		}()
	}
	var last error
	for range eps {
		if last = <-errs; last == nil {
			return nil
		}
	}
	return last
}

func (m *QuorumMonitor) sample(ctx context.Context) {
	began := time.Now()
	eps := m.opts.Endpoints()
	if len(eps) == 0 {
		return
	}
	var wg sync.WaitGroup
	var clusterErr error
	if !m.opts.StatusProbe {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clusterErr = m.anyOf(ctx, eps, func(ctx context.Context, c *clientv3.Client) error {
				_, err := c.Get(ctx, "/quorumguard-monitor")
				return err
			})
		}()
	}
	list, listErr := m.memberList(ctx, eps)
	if m.opts.StatusProbe {
		if listErr != nil && m.lastList != nil {
			list, listErr = m.lastList, nil
		}
		m.lastList = list
	}
	voters, learners := 0, 0
	var healthy atomic.Int64
	var leader atomic.Uint64
	fp := ""
	if list != nil {
		for _, mem := range list.Members {
			fp += fmt.Sprintf("%x:%v,", mem.ID, mem.IsLearner)
			if mem.IsLearner {
				learners++
				continue
			}
			voters++
			if len(mem.ClientURLs) == 0 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if m.readThrough(ctx, mem.ClientURLs[0]) == nil {
					healthy.Add(1)
					if c, err := m.conns.get(mem.ClientURLs[0]); err == nil {
						sctx, cancel := context.WithTimeout(ctx, m.opts.Deadline)
						if st, err := c.Status(sctx, mem.ClientURLs[0]); err == nil && st.Leader != 0 {
							leader.Store(st.Leader)
						}
						cancel()
					}
				}
			}()
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	faults := ""
	if m.opts.Faults != nil {
		faults = m.opts.Faults() // at the sample's end, when what failed is known
	}
	h := int(healthy.Load())
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples++
	var why []string
	if listErr != nil {
		m.listMisses++
		why = append(why, "the member list could not be read: "+listErr.Error())
	} else {
		m.minVoters = min(m.minVoters, voters)
		m.minHealthy = min(m.minHealthy, h)
		m.maxLearners = max(m.maxLearners, learners)
		m.maxMembers = max(m.maxMembers, voters+learners)
		m.minTolerance = min(m.minTolerance, quorum.Tolerance(voters, h))
		if h < quorum.QuorumOf(voters) {
			why = append(why, fmt.Sprintf("%d healthy of %d voting members", h, voters))
		}
	}
	if clusterErr != nil {
		why = append(why, "a linearizable read through the cluster failed: "+clusterErr.Error())
	}
	if len(why) > 0 {
		m.minTolerance = min(m.minTolerance, -1)
		if faults == "" {
			faults = "none"
		}
		now := time.Now()
		text := fmt.Sprintf("%s: %s (faults in force: %s)", now.Format("15:04:05.000"), strings.Join(why, "; "), faults)
		m.losses = append(m.losses, LossSample{Began: began, Ended: now, Text: text})
	}
	if fp != "" && fp != m.lastFingerprint {
		if m.lastFingerprint != "" {
			m.changes++
		}
		m.lastFingerprint = fp
	}
	if l := leader.Load(); l != 0 && (len(m.leaderChanges) == 0 || m.leaderChanges[len(m.leaderChanges)-1] != l) {
		m.leaderChanges = append(m.leaderChanges, l)
	}
}

// MonitorReport sums up what the monitor saw.
type MonitorReport struct {
	Samples, MinVoters, MinHealthy, MaxLearners, MinTolerance int
	// MaxMembers is the most members, voting or not, in one list.
	MaxMembers int
	// QuorumLost lists the samples below quorum (see QuorumMonitor), each with its time, why
	// and the faults in force.
	QuorumLost []string
	// Leaders is the sequence of distinct leaders seen.
	Leaders []uint64
	// ListMisses counts samples whose member list no member gave within the deadline; each
	// is also in QuorumLost.
	ListMisses int
	// Losses are the samples in QuorumLost with the span each sample took.
	Losses []LossSample
}

// LossSample is one sample below quorum: when the sample began and ended, and what it saw.
type LossSample struct {
	Began, Ended time.Time
	Text         string
}

func (r MonitorReport) String() string {
	return fmt.Sprintf("%d samples: voting members >= %d, healthy >= %d, learners <= %d, fault tolerance >= %d, quorum lost in %d samples",
		r.Samples, r.MinVoters, r.MinHealthy, r.MaxLearners, r.MinTolerance, len(r.QuorumLost))
}

// Report returns what was seen so far.
func (m *QuorumMonitor) Report() MonitorReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	lost := make([]string, len(m.losses))
	for i, l := range m.losses {
		lost[i] = l.Text
	}
	return MonitorReport{Samples: m.samples, MinVoters: m.minVoters, MinHealthy: m.minHealthy, MaxLearners: m.maxLearners, MaxMembers: m.maxMembers,
		MinTolerance: m.minTolerance, QuorumLost: lost, Leaders: append([]uint64(nil), m.leaderChanges...),
		ListMisses: m.listMisses, Losses: append([]LossSample(nil), m.losses...)}
}

// Stop stops sampling and returns the report.
func (m *QuorumMonitor) Stop() MonitorReport {
	m.cancel()
	<-m.done
	return m.Report()
}
