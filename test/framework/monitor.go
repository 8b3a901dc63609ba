package framework

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// QuorumMonitor samples the membership every 100 ms: how many voting members there are, how
// many answer a status probe through their own endpoint, and how many learners exist. A
// sample counts as quorum lost when fewer voting members answer than the quorum. It is
// the "quorum never fell" check of the end-to-end tests.
type QuorumMonitor struct {
	cli    *clientv3.Client
	eps    func() []string
	cancel context.CancelFunc
	done   chan struct{}

	mu              sync.Mutex
	samples         int
	minVoters       int
	minHealthy      int
	maxLearners     int
	lostAt          []string
	minTolerance    int
	changes         int
	lastFingerprint string
	leaderChanges   []uint64
	lastList        *clientv3.MemberListResponse
	listMisses      int
	belowPrev       bool
}

// StartQuorumMonitor starts sampling until Stop.
func (c *Cluster) StartQuorumMonitor(ctx context.Context) (*QuorumMonitor, error) {
	cli, err := c.EtcdClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &QuorumMonitor{cli: cli, eps: c.Agent.RunningEndpoints, cancel: cancel, done: make(chan struct{}), minVoters: 1 << 30, minHealthy: 1 << 30, minTolerance: 1 << 30}
	go m.run(ctx)
	return m, nil
}

func (m *QuorumMonitor) run(ctx context.Context) {
	defer close(m.done)
	defer m.cli.Close()
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

func (m *QuorumMonitor) sample(ctx context.Context) {
	if eps := m.eps(); len(eps) > 0 {
		m.cli.SetEndpoints(eps...)
	}
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	list, err := m.cli.MemberList(lctx)
	cancel()
	if err != nil {
		// The request may have gone to the one frozen or cut-off member: judge quorum from the
		// last list by probing each member directly, and count the miss separately.
		m.mu.Lock()
		m.listMisses++
		list = m.lastList
		m.mu.Unlock()
		if list == nil || ctx.Err() != nil {
			return
		}
	} else {
		m.mu.Lock()
		m.lastList = list
		m.mu.Unlock()
	}
	voters, healthy, learners := 0, 0, 0
	var leader uint64
	fp := ""
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
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := m.cli.Status(sctx, mem.ClientURLs[0])
		cancel()
		if err == nil {
			healthy++
			if st.Leader != 0 {
				leader = st.Leader
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples++
	m.minVoters = min(m.minVoters, voters)
	m.minHealthy = min(m.minHealthy, healthy)
	m.maxLearners = max(m.maxLearners, learners)
	m.minTolerance = min(m.minTolerance, quorum.Tolerance(voters, healthy))
	// A loss is two consecutive samples (at least 100 ms apart) in which fewer voting members
	// answer than the quorum: one probe that misses its 1 s deadline on a starved machine is
	// not a lost quorum, a member set that stays unable to answer is.
	if healthy < quorum.QuorumOf(voters) {
		if m.belowPrev {
			m.lostAt = append(m.lostAt, fmt.Sprintf("%s: %d healthy of %d voting members", time.Now().Format("15:04:05.000"), healthy, voters))
		}
		m.belowPrev = true
	} else {
		m.belowPrev = false
	}
	if fp != m.lastFingerprint {
		if m.lastFingerprint != "" {
			m.changes++
		}
		m.lastFingerprint = fp
	}
	if leader != 0 && (len(m.leaderChanges) == 0 || m.leaderChanges[len(m.leaderChanges)-1] != leader) {
		m.leaderChanges = append(m.leaderChanges, leader)
	}
}

// MonitorReport sums up what the monitor saw.
type MonitorReport struct {
	Samples, MinVoters, MinHealthy, MaxLearners, MinTolerance int
	// QuorumLost lists the samples where healthy voters were below quorum or the member list
	// could not be read.
	QuorumLost []string
	// Leaders is the sequence of distinct leaders seen.
	Leaders []uint64
	// ListMisses counts samples whose member list request timed out (the request went to a
	// member that could not answer); quorum was then judged by probing each member.
	ListMisses int
}

func (r MonitorReport) String() string {
	return fmt.Sprintf("%d samples: voting members >= %d, healthy >= %d, learners <= %d, fault tolerance >= %d, quorum lost in %d samples",
		r.Samples, r.MinVoters, r.MinHealthy, r.MaxLearners, r.MinTolerance, len(r.QuorumLost))
}

// Report returns what was seen so far.
func (m *QuorumMonitor) Report() MonitorReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MonitorReport{Samples: m.samples, MinVoters: m.minVoters, MinHealthy: m.minHealthy, MaxLearners: m.maxLearners,
		MinTolerance: m.minTolerance, QuorumLost: append([]string(nil), m.lostAt...), Leaders: append([]uint64(nil), m.leaderChanges...),
		ListMisses: m.listMisses}
}

// Stop stops sampling and returns the report.
func (m *QuorumMonitor) Stop() MonitorReport {
	m.cancel()
	<-m.done
	return m.Report()
}
