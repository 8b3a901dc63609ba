package operatorstatus

import (
	"fmt"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// Report is the read-only picture `quorumguard status` prints: etcd's members, the
// control-plane Machines, the ClusterOperator's conditions and the planner's next step.
type Report struct {
	Time      time.Time `json:"time"`
	Namespace string    `json:"namespace"`
	// Desired is the number of voting members wanted.
	Desired int `json:"desiredVotingMembers"`
	// EtcdError says why etcd could not be observed; Members is then empty, or, with quorum
	// lost, as one member sees them.
	EtcdError string `json:"etcdError,omitempty"`
	// QuorumLost says etcd answered without quorum (EtcdError then says so).
	QuorumLost bool            `json:"quorumLost,omitempty"`
	Members    []MemberReport  `json:"members"`
	Machines   []MachineReport `json:"machines"`
	// ClusterOperator is nil when none is named or it does not exist.
	ClusterOperator     *ClusterOperatorReport `json:"clusterOperator,omitempty"`
	MachineHealthChecks []MHCVerdict           `json:"machineHealthChecks"`
	Next                NextStep               `json:"next"`
	// Topology is status.controlPlaneTopology of infrastructures.config.openshift.io/cluster,
	// "HighlyAvailable (default)" when unset or absent, "unknown" when it could not be read.
	Topology string `json:"controlPlaneTopology"`
	// TopologyHold says why the topology leaves quorumguard nothing to change (pkg/coexist);
	// Next then takes no step.
	TopologyHold string `json:"topologyHold,omitempty"`
}

// HoldForTopology makes the next step none, as the controller's is while the control-plane
// topology holds it (why), keeping the planner's fault tolerance and reports.
func (r *Report) HoldForTopology(why string) {
	r.TopologyHold = why
	if why == "" {
		return
	}
	r.Next.Action, r.Next.Machine = string(quorum.None), ""
	r.Next.Step, r.Next.Reason = "nothing: held for the control-plane topology", why
}

// MemberReport is one etcd member.
type MemberReport struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Machine string `json:"machine,omitempty"`
	// Placement says why the member is not placed on exactly one Machine; empty when it is.
	Placement string `json:"placement,omitempty"`
	// Role is "voter" or "learner".
	Role string `json:"role"`
	// Health is "healthy", "unhealthy" or "not started".
	Health string `json:"health"`
	// Alarms are the etcd alarms active for the member (NOSPACE, CORRUPT); a member with
	// any is unhealthy.
	Alarms    []string `json:"alarms,omitempty"`
	RaftIndex uint64   `json:"raftIndex"`
	Leader    bool     `json:"leader"`
	Progress  float64  `json:"progress,omitempty"`
	PeerURLs  []string `json:"peerURLs"`
	Error     string   `json:"error,omitempty"`
}

// MachineReport is one control-plane Machine.
type MachineReport struct {
	Name          string `json:"name"`
	Phase         string `json:"phase"`
	Deleting      bool   `json:"deleting"`
	FailureDomain string `json:"failureDomain,omitempty"`
	Hook          bool   `json:"hook"`
	// EtcdMember is the reason of the Machine's EtcdMember condition, and Message its message.
	EtcdMember string `json:"etcdMember,omitempty"`
	Message    string `json:"message,omitempty"`
	InternalIP string `json:"internalIP,omitempty"`
}

// ClusterOperatorReport is the ClusterOperator as stored.
type ClusterOperatorReport struct {
	Name       string                                    `json:"name"`
	Conditions []configv1.ClusterOperatorStatusCondition `json:"conditions"`
	Versions   []configv1.OperandVersion                 `json:"versions,omitempty"`
}

// NextStep is what the planner would do now, and why.
type NextStep struct {
	Action         string   `json:"action"`
	Machine        string   `json:"machine,omitempty"`
	Step           string   `json:"step"`
	Reason         string   `json:"reason"`
	FaultTolerance int      `json:"faultTolerance"`
	Reports        []string `json:"reports,omitempty"`
}

// Next is the next step of decision d, made on s. An action is named (Step). A decision
// that takes none says what it waits for, in the planner's own words: the condition it
// gives the Machine its action names (a learner waiting for etcd's health window, a removal
// waiting for endpoint consumers), then that of every deleting Machine whose hook it holds
// (no replacement yet, one not running, one catching up, a blocked replacement). Only with
// nothing under way is it "nothing to do". It decides nothing itself.
func Next(s quorum.State, d quorum.Decision) NextStep {
	n := NextStep{Action: string(d.Action.Kind), Machine: d.Action.Machine, Step: Step(d.Action),
		Reason: d.Action.Reason, FaultTolerance: d.FaultTolerance, Reports: d.Reports}
	if d.Action.Kind != quorum.None && d.Action.Kind != "" {
		return n
	}
	var waits []string
	wait := func(name string) {
		if c, ok := d.Conditions[name]; ok && c.Message != "" {
			waits = append(waits, fmt.Sprintf("Machine %s (%s): %s", name, c.Reason, c.Message))
		}
	}
	if d.Action.Machine != "" {
		wait(d.Action.Machine)
	}
	for _, m := range s.Machines {
		if m.Deleting && m.HasHook && m.Name != d.Action.Machine {
			wait(m.Name)
		}
	}
	if len(waits) > 0 {
		n.Step = "wait: " + strings.Join(waits, "; ")
	}
	return n
}
