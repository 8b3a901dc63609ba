package controlplane

import (
	"context"
	"time"

	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// Pass is what one pass of the controller reads, and what it decides on that.
type Pass struct {
	// Machines are the control-plane Machines, sorted by name.
	Machines []machinev1beta1.Machine
	// ControlPlaneMachineSet is nil when there is none.
	ControlPlaneMachineSet *machinev1.ControlPlaneMachineSet
	// State is the planner's input (StateOf); State.Desired is the desired voting members.
	State quorum.State
	// Observed is the member list State.Members was built from, in the same order. It is
	// empty when etcd could not be observed, and one member's own view with quorum lost.
	Observed []etcdmember.Observed
	// EtcdErr says why etcd could not be observed, an *etcdmember.NoQuorumError when it
	// answered without quorum. The planner is then not asked.
	EtcdErr error
	// Decision is the planner's on State; with EtcdErr set it is what such a pass reports
	// instead: no action, no conditions, the fault tolerance a view without quorum shows.
	Decision quorum.Decision
}

// DryRun is one pass of the Reconciler that acts on nothing: it reads through the pass's
// own code (the Machines listed and sorted, the ControlPlaneMachineSet and the desired
// count, a fresh Etcd.Observe, StateOf) and decides as the pass would: quorum.Decide, or,
// when etcd could not be observed, the fault tolerance a view without quorum shows and
// nothing else. It adds no hook, passes no fence, takes no action, and writes no condition,
// Event or endpoint list.
//
// Only what one reading shows is known. A learner's health is that reading's
// (quorum.WithinReach, see StateOf), where a running controller also compares it with its
// previous pass and counts how long the learner has stood still; and no removal is held
// for endpoint consumers, whose acknowledgements only a publishing pass reads. `quorumguard
// status` reports its result.
func DryRun(ctx context.Context, s Source) (*Pass, error) {
	st, err := s.read(ctx, nil, time.Now)
	if err != nil {
		return nil, err
	}
	return &Pass{Machines: st.machines, ControlPlaneMachineSet: st.cpms, State: st.state, Observed: st.observed,
		EtcdErr: st.etcdErr, Decision: decide(st)}, nil
}
