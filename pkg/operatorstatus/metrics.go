package operatorstatus

import (
	"errors"
	"fmt"
	"sync"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// The metric names, all prefixed quorumguard_.
const (
	MetricVotingMembers       = "quorumguard_etcd_voting_members"
	MetricLearners            = "quorumguard_etcd_learners"
	MetricHealthyMembers      = "quorumguard_etcd_healthy_members"
	MetricFaultTolerance      = "quorumguard_etcd_fault_tolerance"
	MetricEtcdObserved        = "quorumguard_etcd_observed"
	MetricLearnerCatchUp      = "quorumguard_learner_catch_up_ratio"
	MetricHookHeldSeconds     = "quorumguard_hook_held_seconds"
	MetricReplacements        = "quorumguard_replacements_total"
	MetricReplacementDuration = "quorumguard_replacement_duration_seconds"
	MetricFencingRefusals     = "quorumguard_fencing_refusals_total"
	MetricLeader              = "quorumguard_leader"
	MetricEtcdAlarms          = "quorumguard_etcd_alarms"
)

// Metrics are the Prometheus series of one process.
type Metrics struct {
	voters, learners, healthy, tolerance, observed, leader prometheus.Gauge
	catchUp, hookHeld, alarms                              *prometheus.GaugeVec
	replacements, refusals                                 prometheus.Counter
	duration                                               prometheus.Histogram

	// mu serialises Updates from controllers that share the series.
	mu sync.Mutex
}

// MetricsInput is one pass, as the metrics see it.
type MetricsInput struct {
	Time     time.Time
	Machines []machinev1beta1.Machine
	Members  []quorum.Member
	Decision quorum.Decision
	// Observed is false when the pass could not observe etcd; the etcd series then keep
	// their last values and quorumguard_etcd_observed is 0.
	Observed bool
	// Err is the pass's error; Fenced says it was a fencing refusal.
	Err    error
	Fenced bool
	Hook   machinev1beta1.LifecycleHook
}

// NewMetrics registers the series on reg. Several controllers in one process (tests) share
// one set: a series already registered is reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &Metrics{
		voters:    gauge(MetricVotingMembers, "Voting etcd members in the newest member list."),
		learners:  gauge(MetricLearners, "Learner etcd members in the newest member list."),
		healthy:   gauge(MetricHealthyMembers, "Voting etcd members that passed their health probe."),
		tolerance: gauge(MetricFaultTolerance, "How many more voting members may fail before etcd loses quorum; negative when it has."),
		observed:  gauge(MetricEtcdObserved, "1 when the newest pass could list and probe the etcd members, else 0."),
		leader:    gauge(MetricLeader, "1 while this replica leads and acts, else 0."),
		catchUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricLearnerCatchUp,
			Help: "Each learner's raft index over the leader's, 0 to 1; etcd promotes from 0.9."}, []string{"member", "machine"}),
		hookHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricHookHeldSeconds,
			Help: "Seconds since each deleting control-plane Machine that still carries the preDrain hook was deleted."}, []string{"machine"}),
		alarms: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricEtcdAlarms,
			Help: "1 for each etcd alarm (NOSPACE, CORRUPT) active for a member; no series while none is."}, []string{"member", "machine", "alarm"}),
		replacements: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricReplacements,
			Help: "Deleting control-plane Machines whose preDrain hook was released once their etcd member was gone."}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricFencingRefusals,
			Help: "Actions refused because another replica holds a newer leadership."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricReplacementDuration,
			Help:    "Seconds from a control-plane Machine's deletion to the release of its preDrain hook.",
			Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600}}),
	}
	var errs []error
	register := func(c prometheus.Collector) prometheus.Collector {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		switch {
		case err == nil:
			return c
		case errors.As(err, &are):
			return are.ExistingCollector
		default:
			errs = append(errs, err)
			return c
		}
	}
	m.voters = register(m.voters).(prometheus.Gauge)
	m.learners = register(m.learners).(prometheus.Gauge)
	m.healthy = register(m.healthy).(prometheus.Gauge)
	m.tolerance = register(m.tolerance).(prometheus.Gauge)
	m.observed = register(m.observed).(prometheus.Gauge)
	m.leader = register(m.leader).(prometheus.Gauge)
	m.catchUp = register(m.catchUp).(*prometheus.GaugeVec)
	m.hookHeld = register(m.hookHeld).(*prometheus.GaugeVec)
	m.alarms = register(m.alarms).(*prometheus.GaugeVec)
	m.replacements = register(m.replacements).(prometheus.Counter)
	m.refusals = register(m.refusals).(prometheus.Counter)
	m.duration = register(m.duration).(prometheus.Histogram)
	if len(errs) > 0 {
		return nil, fmt.Errorf("register metrics: %w", errors.Join(errs...))
	}
	return m, nil
}

// Update sets the series from one pass. A replacement is counted, with its duration from
// the Machine's deletion, when the pass released a hook without error.
func (m *Metrics) Update(in MetricsInput) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if in.Observed {
		m.observed.Set(1)
		var voters, learners, healthy int
		m.catchUp.Reset()
		for _, mem := range in.Members {
			if mem.Learner {
				learners++
				m.catchUp.WithLabelValues(fmt.Sprintf("%x", mem.ID), mem.Machine).Set(mem.Progress)
				continue
			}
			voters++
			if mem.Healthy {
				healthy++
			}
		}
		m.voters.Set(float64(voters))
		m.learners.Set(float64(learners))
		m.healthy.Set(float64(healthy))
		m.tolerance.Set(float64(in.Decision.FaultTolerance))
		// Alarms that could not be read keep their last series, as unobserved etcd does.
		if in.Decision.AlarmsUnread == "" {
			m.alarms.Reset()
			for _, mem := range in.Members {
				for _, a := range mem.Alarms {
					m.alarms.WithLabelValues(fmt.Sprintf("%x", mem.ID), mem.Machine, a).Set(1)
				}
			}
		}
	} else {
		m.observed.Set(0)
	}
	released := ""
	if a := in.Decision.Action; a.Kind == quorum.ReleaseHook && in.Err == nil {
		released = a.Machine
	}
	m.hookHeld.Reset()
	for i := range in.Machines {
		mc := &in.Machines[i]
		if mc.DeletionTimestamp == nil {
			continue
		}
		held := max(0, in.Time.Sub(mc.DeletionTimestamp.Time).Seconds())
		switch {
		case mc.Name == released:
			m.replacements.Inc()
			m.duration.Observe(held)
		case hasHook(mc, in.Hook):
			m.hookHeld.WithLabelValues(mc.Name).Set(held)
		}
	}
	if in.Fenced {
		m.refusals.Inc()
	}
}

// SetLeader sets quorumguard_leader.
func (m *Metrics) SetLeader(leads bool) {
	if leads {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}
