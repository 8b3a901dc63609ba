package coexist

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/openshift"
)

// MetricAnotherOperator is 1 for each scope ("quorum", "machines") that another operator
// manages, so quorumguard leaves it alone.
const MetricAnotherOperator = "quorumguard_another_operator_active"

// DefaultInterval is how often Guard reads the objects again: four Gets every 30 s.
const DefaultInterval = 30 * time.Second

// Guard keeps a Verdict fresh and answers the controllers' Hold questions. Until its first
// read succeeds it holds both scopes: not knowing is no permission.
type Guard struct {
	// Clients read the objects (Gather).
	Clients         *openshift.Clients
	ClusterOperator string
	Interval        time.Duration
	// Recorder and Regarding, when set, get a Warning Event each time a scope becomes held
	// and a Normal one when it is released.
	Recorder  recorder.EventRecorder
	Regarding runtime.Object
	Log       logr.Logger
	// Gauge is MetricAnotherOperator, by scope; see NewGauge.
	Gauge *prometheus.GaugeVec

	mu      sync.Mutex
	checked bool
	v       Verdict
	writers []string
	lastErr error
}

// NewGauge registers MetricAnotherOperator on reg, or returns the one already there.
func NewGauge(reg prometheus.Registerer) (*prometheus.GaugeVec, error) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricAnotherOperator,
		Help: "1 while another operator manages this scope (quorum: etcd membership, hooks and the ClusterOperator; machines: control-plane Machines), so quorumguard leaves it alone."},
		[]string{"scope"})
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		g = are.ExistingCollector.(*prometheus.GaugeVec)
	}
	return g, nil
}

// NeedLeaderElection is false: a standby keeps the verdict fresh, so a new leader acts on
// a current one.
func (g *Guard) NeedLeaderElection() bool { return false }

// Start reads at once, then every Interval, until ctx ends.
func (g *Guard) Start(ctx context.Context) error {
	interval := g.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		g.Check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check reads the objects once and updates the verdict. A failed read keeps the last
// verdict (or, before the first, holds both scopes).
func (g *Guard) Check(ctx context.Context) {
	in, err := Gather(ctx, g.Clients, g.ClusterOperator)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		if g.lastErr == nil || g.lastErr.Error() != err.Error() {
			g.Log.Error(err, "cannot tell whether another operator manages etcd or the control-plane Machines; keeping the last verdict")
		}
		g.lastErr = err
		return
	}
	g.lastErr = nil
	v := Decide(in)
	prev := g.v
	first := !g.checked
	g.checked, g.v, g.writers = true, v, in.StatusWriters
	g.report("quorum", first, prev.Quorum, v.Quorum)
	g.report("machines", first, prev.Machines, v.Machines)
	g.reportTopology(first, prev, v, string(in.Topology))
}

// reportTopology logs, and sends an Event for, a change of the topology's verdict.
func (g *Guard) reportTopology(first bool, prev, now Verdict, topology string) {
	if !first && now.Topology == prev.Topology && slices.Equal(now.Roles, prev.Roles) {
		return
	}
	switch {
	case now.Topology != "":
		g.Log.Info("quorumguard holds for the control-plane topology", "reason", now.Topology)
		g.event(corev1.EventTypeWarning, "ControlPlaneTopologyHeld", now.Topology)
	case first && len(now.Roles) == 1:
	default:
		if topology == "" {
			topology = "HighlyAvailable (the default)"
		}
		g.Log.Info("quorumguard protects quorum for the control-plane topology", "topology", topology, "roles", now.Roles)
		g.event(corev1.EventTypeNormal, "ControlPlaneTopologyProtected", "quorumguard protects etcd quorum on the "+topology+
			" control plane: Machines labelled "+strings.Join(now.Roles, " or ")+" hold the members and carry the hooks")
	}
}

func (g *Guard) report(scope string, first bool, prev, now string) {
	if g.Gauge != nil {
		val := 0.0
		if now != "" {
			val = 1
		}
		g.Gauge.WithLabelValues(scope).Set(val)
	}
	if now == prev && !first {
		return
	}
	switch {
	case now != "":
		g.Log.Info("another operator is active; quorumguard leaves this alone", "scope", scope, "reason", now)
		g.event(corev1.EventTypeWarning, "AnotherOperatorActive", now)
	case !first:
		g.Log.Info("no other operator is active any more; quorumguard acts again", "scope", scope)
		g.event(corev1.EventTypeNormal, "AnotherOperatorGone", "quorumguard acts on "+scope+" again: no other operator manages it")
	}
}

func (g *Guard) event(typ, reason, note string) {
	if g.Recorder == nil || g.Regarding == nil {
		return
	}
	g.Recorder.Eventf(g.Regarding, nil, typ, reason, "Coexist", "%s", note)
}

// Quorum is why quorumguard must not change etcd membership, hooks or its ClusterOperator
// now; empty when it may.
func (g *Guard) Quorum() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.checked {
		return "not yet known whether another operator manages etcd"
	}
	return g.v.Quorum
}

// Machines is why quorumguard must not create or delete control-plane Machines now; empty
// when it may.
func (g *Guard) Machines() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.checked {
		return "not yet known whether another operator manages the control-plane Machines"
	}
	return g.v.Machines
}

// Topology is why the control-plane topology leaves quorumguard nothing to change now:
// no membership change, no hook released; empty when it protects quorum. Unlike Quorum it
// does not keep quorumguard from writing its ClusterOperator.
func (g *Guard) Topology() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.checked {
		return TopologyHoldPrefix + "is not yet known"
	}
	return g.v.Topology
}

// Roles are the values of masters.RoleLabel whose Machines hold etcd members: master, and
// arbiter on a HighlyAvailableArbiter control plane. Before the first read, master alone
// (and Topology holds meanwhile).
func (g *Guard) Roles() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.checked || len(g.v.Roles) == 0 {
		return []string{masters.MasterRole}
	}
	return slices.Clone(g.v.Roles)
}

// Hold is Quorum, or else Topology: why quorumguard must change no etcd membership and
// release no hook now; empty when it may.
func (g *Guard) Hold() string {
	if why := g.Quorum(); why != "" {
		return why
	}
	return g.Topology()
}

// OwnsClusterOperator says no one else writes the status of quorumguard's ClusterOperator,
// as far as the last read shows; false before the first read.
func (g *Guard) OwnsClusterOperator() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checked && len(g.writers) == 0
}
