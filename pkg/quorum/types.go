package quorum

import "fmt"

// Machine is what the planner needs to know of one control-plane Machine.
type Machine struct {
	Name     string
	Deleting bool
	Running  bool
	// HasHook says the controller's preDrain hook is on the Machine.
	HasHook bool
	// InternalIPs are the Machine's InternalIP addresses, normalised.
	InternalIPs []string
	// MemberID is the etcd member whose peer URL matches one of the InternalIPs, 0 for none.
	MemberID uint64
	// AddressConflict says another Machine reports one of the same InternalIPs.
	AddressConflict bool
	// ReleasedByUs says the Machine's EtcdMember condition already records that the
	// controller released the hook (so a missing hook is not an external removal).
	ReleasedByUs bool
}

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
	// Machine is the name of the Machine the member belongs to, "" for none.
	Machine string
}

// State is the snapshot one decision is made on.
type State struct {
	// Desired is the number of voting members wanted (the ControlPlaneMachineSet's replicas).
	Desired  int
	Machines []Machine
	Members  []Member
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
	To     uint64
	Reason string
}

func (a Action) String() string {
	switch a.Kind {
	case None:
		return "nothing to do: " + a.Reason
	case AddLearner:
		return fmt.Sprintf("add learner %s for Machine %s: %s", a.PeerURL, a.Machine, a.Reason)
	case MoveLeader:
		return fmt.Sprintf("move leadership from %x to %x: %s", a.MemberID, a.To, a.Reason)
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
	ReasonHookReleased          = "HookReleased"
	ReasonHookRemovedExternally = "HookRemovedExternally"
	ReasonEtcdUnreachable       = "EtcdUnreachable"
	ReasonNoQuorum              = "NoQuorum"
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
	// Reports are facts a person should see that need no action (orphan members, conflicts).
	Reports []string
}
