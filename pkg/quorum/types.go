package quorum

import (
	"fmt"
	"time"
)

// Machine is what the planner needs to know of one control-plane Machine.
type Machine struct {
	Name     string
	Deleting bool
	Running  bool
	// HasHook says the controller's preDrain hook is on the Machine.
	HasHook bool
	// HasPreTerminateHook says the controller's preTerminate hook is on the Machine (see
	// State.PreTerminateHook).
	HasPreTerminateHook bool
	// ExcludeDrain says the Machine carries the exclude-node-draining annotation: OpenShift's
	// Machine controller skips its drain, and every preDrain hook with it.
	ExcludeDrain bool
	// Addresses are the Machine's status.addresses.
	Addresses []Address
	// NodeName is the Node named in status.nodeRef, "" for none.
	NodeName string
	// Domain is the failure domain the Machine is in, "" when unknown or none is listed.
	// When several members wait for removal, the one in the most-used domain goes first.
	Domain string
	// Ineligible says why the Machine may not hold an etcd member (see
	// masters.MayHoldMember, the one definition); "" when it may.
	Ineligible string
	// LearnerTimedOut says a learner of this Machine was removed recently because it never
	// started; other Machines are then given the learner slot first.
	LearnerTimedOut bool
	// ReleasedByUs says the Machine's EtcdMember condition already records that the
	// controller released the hook (so a missing hook is not an external removal).
	ReleasedByUs bool
	// VotingSince is when the Machine's EtcdMember condition last turned to a voting member
	// (its lastTransitionTime), zero when it does not say Voting. A member promoted less
	// than HealthWindow ago is not yet counted by etcd for a removal.
	VotingSince time.Time
}

// HealthWindow is etcd's health interval: with strict reconfiguration checks on, a member
// refuses to remove a voting member ("unhealthy cluster") unless enough voting members have
// been connected to it for this long. Right after a promotion the new member has not.
const HealthWindow = 5 * time.Second

// Member is one etcd member as gathered.
type Member struct {
	ID       uint64
	Name     string
	PeerURLs []string
	Learner  bool
	// Started is false for a member that was added but whose process never joined.
	Started bool
	Healthy bool
	Leader  bool
	// Progress is a learner's applied index over the leader's, 0..1.
	Progress float64
	// Index is the member's raft index as its own status reported it in this reading; 0
	// when it did not answer. The new leader chosen before a leader's removal is the
	// healthy voter with the highest.
	Index uint64
	// DownFor is how long a learner that is not healthy (never started, or stopped
	// answering) has been seen so.
	DownFor time.Duration
	// CatchUp is how a learner's catch-up goes, as the controller measured it across passes;
	// it only words the Machine's condition.
	CatchUp CatchUp
	// Machine is the Machine the member belongs to, as Map places it; ignored on input.
	Machine string
	// Alarms are the etcd alarms active for this member (AlarmNoSpace, AlarmCorrupt). A
	// member with any is not healthy, whatever its probe said (the gatherer sees to it).
	Alarms []string
}

// CatchUp is a learner's catch-up as measured across passes.
type CatchUp struct {
	// Snapshot is the leader's report of the snapshot it sends the learner.
	Snapshot SnapshotReading
	// Rate is how many raft entries a second the gap to the leader closed since the previous
	// pass, and Left the time until it closes at that rate; both 0 when it did not close.
	Rate float64
	Left time.Duration
}

// State is the snapshot one decision is made on.
type State struct {
	// Desired is the number of voting members wanted (the ControlPlaneMachineSet's replicas).
	Desired  int
	Machines []Machine
	Members  []Member
	// LearnerStartTimeout is how long a learner may stay unstarted or unhealthy before it is
	// removed to
	// free the learner slot; 0 never removes one.
	LearnerStartTimeout time.Duration
	// Now is the time of the snapshot; with it zero, no member counts as just promoted.
	Now time.Time
	// RemovalHeld names the members whose removal must wait, and why: the consumers of the
	// published endpoints (pkg/endpoints) have not yet rolled out a list without them.
	RemovalHeld map[uint64]string
	// AlarmsUnread says why etcd's alarm list could not be read in this snapshot; "" when
	// it was. Unread alarms hold every membership change, as a CORRUPT alarm does.
	AlarmsUnread string
	// PreTerminateHook says the controller keeps a preTerminate hook beside the preDrain one
	// (Machine.HasPreTerminateHook). The two are released together: a deleting Machine is
	// held while either is on it, and a live Machine is protected once both are.
	PreTerminateHook bool
}

// Placed returns the members with Machine set as Map places them.
func (s State) Placed() []Member {
	mp := Map(s.Machines, s.Members)
	out := make([]Member, len(s.Members))
	for i, m := range s.Members {
		m.Machine = mp.Of[m.ID].Machine
		out[i] = m
	}
	return out
}

// InternalIPs are the Machine's InternalIP addresses, in order.
func (m Machine) InternalIPs() []string {
	var out []string
	for _, a := range m.Addresses {
		if a.Type == AddressInternalIP && a.Address != "" {
			out = append(out, a.Address)
		}
	}
	return out
}

// Kind is the kind of action.
type Kind string

// The actions, at most one per decision.
const (
	None         Kind = "None"
	AddLearner   Kind = "AddLearner"
	Promote      Kind = "Promote"
	MoveLeader   Kind = "MoveLeader"
	RemoveMember Kind = "RemoveMember"
	ReleaseHook  Kind = "ReleaseHook"
)

// Action is what the controller should do next.
type Action struct {
	Kind     Kind
	Machine  string
	MemberID uint64
	// PeerURL is the learner's peer URL for AddLearner.
	PeerURL string
	// To is the member that takes leadership for MoveLeader.
	To uint64
	// StartTimedOut marks the RemoveMember of a learner that was not healthy (never
	// started, or stopped answering) for State.LearnerStartTimeout.
	StartTimedOut bool
	Reason        string
	// Until, on a None that waits for etcd's health window, is when the wait ends.
	Until time.Time
}

func (a Action) String() string {
	switch a.Kind {
	case None:
		return "nothing to do: " + a.Reason
	case AddLearner:
		return fmt.Sprintf("add learner %s for Machine %s: %s", a.PeerURL, a.Machine, a.Reason)
	case MoveLeader:
		return fmt.Sprintf("move leadership from %x to %x: %s", a.MemberID, a.To, a.Reason)
	case ReleaseHook:
		return fmt.Sprintf("release the hook of Machine %s: %s", a.Machine, a.Reason)
	default:
		return fmt.Sprintf("%s member %x of Machine %s: %s", a.Kind, a.MemberID, a.Machine, a.Reason)
	}
}

// The EtcdMember condition reasons.
const (
	ReasonVoting                = "Voting"
	ReasonLearner               = "Learner"
	ReasonNotMember             = "NotMember"
	ReasonWaitingForReplacement = "WaitingForReplacement"
	ReasonReplacementCatchingUp = "ReplacementCatchingUp"
	ReasonRemovingMember        = "RemovingMember"
	// ReasonWaitingForHealthWindow: the replacement was promoted less than HealthWindow ago
	// and etcd would refuse the old member's removal until then; the message says when.
	ReasonWaitingForHealthWindow = "WaitingForHealthWindow"
	// ReasonWaitingForEndpointConsumers: the member is removed once every declared consumer
	// of the published etcd endpoints has acknowledged a list without it.
	ReasonWaitingForEndpointConsumers = "WaitingForEndpointConsumers"
	ReasonHookReleased                = "HookReleased"
	ReasonHookRemovedExternally       = "HookRemovedExternally"
	ReasonEtcdUnreachable             = "EtcdUnreachable"
	ReasonNoQuorum                    = "NoQuorum"
	// ReasonBlocked: the replacement cannot go on safely and the message says what a person
	// (or a MachineHealthCheck) must do, or what must recover, for it to go on.
	ReasonBlocked = "Blocked"
)

// Condition is the EtcdMember condition a Machine should carry.
type Condition struct {
	// Status is "True" for a voting member, "False" otherwise.
	Status  string
	Reason  string
	Message string
}

// Decision is the planner's answer.
type Decision struct {
	Action     Action
	Conditions map[string]Condition
	// InFlight says something is under way (a learner, an unhealthy member, a held hook) so
	// the controller should look again soon rather than wait for an event.
	InFlight bool
	// FaultTolerance is how many voting members may fail now without losing quorum.
	FaultTolerance int
	// Reports are facts a person should see (unaccounted members, shared addresses).
	Reports []string
	// Members are the input members with Machine set from Mapping.
	Members []Member
	// Mapping is where each member was placed.
	Mapping Mapping
	// Unaccounted are the voting members Map could not place on exactly one Machine; while
	// any exists no hook is released and no learner is added.
	Unaccounted []uint64
	// AlarmsUnread is State.AlarmsUnread: the members' alarms are unknown when it is set.
	AlarmsUnread string
}
