package coexist

import (
	"fmt"
	"slices"
	"strings"

	configv1 "github.com/openshift/api/config/v1"

	"github.com/quorumguard/quorumguard/pkg/masters"
)

// FieldManager is the field manager quorumguard writes with (its user agent); every other
// manager of a ClusterOperator's status is someone else.
const FieldManager = "quorumguard"

// CPMSOperatorName is the ClusterOperator of the ControlPlaneMachineSet operator.
const CPMSOperatorName = "control-plane-machine-set"

// Input is what Decide needs, as Gather reads it.
type Input struct {
	// EtcdOperatorFound says etcds.operator.openshift.io/cluster exists;
	// EtcdManagementState is its spec.managementState ("" is the API default, Managed).
	EtcdOperatorFound   bool
	EtcdManagementState string
	// ClusterOperator is the one quorumguard reports through ("" when it reports through
	// none); StatusWriters are the field managers other than FieldManager that own fields
	// of its status.
	ClusterOperator string
	StatusWriters   []string
	// CPMSOperatorAvailable is the Available condition of the control-plane-machine-set
	// ClusterOperator; "" when there is none.
	CPMSOperatorAvailable configv1.ConditionStatus
	// Topology is status.controlPlaneTopology of infrastructures.config.openshift.io/cluster;
	// "" when that object, or its API, does not exist or the field is unset, which Decide
	// reads as HighlyAvailable (the API's default, and a plain Kubernetes cluster).
	Topology configv1.TopologyMode
}

// Verdict says what quorumguard must leave alone, and why, in words a person can act on.
// An empty reason means quorumguard may act.
type Verdict struct {
	// Quorum: etcd membership, the preDrain hooks and the ClusterOperator.
	Quorum string
	// Machines: creating and deleting control-plane Machines.
	Machines string
	// Topology: the control-plane topology leaves quorumguard nothing it may protect
	// (DualReplica, SingleReplica, External) or is one it does not know. Like Quorum it
	// holds every membership change and hook release, but quorumguard still reports
	// through its ClusterOperator and `quorumguard status`. Every reason starts with
	// TopologyHoldPrefix.
	Topology string
	// Roles are the values of masters.RoleLabel whose Machines hold etcd members and carry
	// the hooks: master, and arbiter on a HighlyAvailableArbiter control plane.
	Roles []string
}

// TopologyHoldPrefix starts every Verdict.Topology, so that a report can tell a topology hold
// from another operator's.
const TopologyHoldPrefix = "the control-plane topology "

// Decide applies the rules in the package comment.
func Decide(in Input) Verdict {
	var v Verdict
	var quorum []string
	if in.EtcdOperatorFound {
		switch state := in.EtcdManagementState; state {
		case "", "Managed", "Force":
			if state == "" {
				state = "Managed (the default)"
			}
			quorum = append(quorum, fmt.Sprintf("the etcd operator manages etcd (etcds.operator.openshift.io/cluster spec.managementState is %s); set it to Unmanaged to hand quorum protection over to quorumguard", state))
		}
	}
	if len(in.StatusWriters) > 0 && in.ClusterOperator != "" {
		w := slices.Clone(in.StatusWriters)
		slices.Sort(w)
		quorum = append(quorum, fmt.Sprintf("ClusterOperator %s's status is also written by %s; give quorumguard a ClusterOperator of its own (--cluster-operator), or reset that status's managedFields once the other writer is gone",
			in.ClusterOperator, strings.Join(slices.Compact(w), ", ")))
	}
	v.Quorum = strings.Join(quorum, "; ")
	if in.CPMSOperatorAvailable == configv1.ConditionTrue {
		v.Machines = "the ControlPlaneMachineSet operator manages the control-plane Machines (ClusterOperator " + CPMSOperatorName + " is Available); quorumguard only protects quorum"
	}
	v.Topology, v.Roles = decideTopology(in.Topology)
	return v
}

// decideTopology is the hold (empty when quorumguard protects quorum) and the member roles
// for the control-plane topology t.
func decideTopology(t configv1.TopologyMode) (string, []string) {
	hold := func(why string) string {
		return TopologyHoldPrefix + "(infrastructures.config.openshift.io/cluster status.controlPlaneTopology) is " + why
	}
	switch t {
	case "", configv1.HighlyAvailableTopologyMode:
		return "", []string{masters.MasterRole}
	case configv1.HighlyAvailableArbiterMode:
		return "", []string{masters.MasterRole, masters.ArbiterRole}
	case configv1.DualReplicaTopologyMode:
		return hold("DualReplica: Pacemaker owns etcd membership, so quorumguard changes no membership and releases no hook"), []string{masters.MasterRole}
	case configv1.SingleReplicaTopologyMode:
		return hold("SingleReplica: one etcd member has no quorum to protect; quorumguard holds"), []string{masters.MasterRole}
	case configv1.ExternalTopologyMode:
		return hold("External: etcd runs outside this cluster, so there is nothing here to protect; quorumguard holds"), []string{masters.MasterRole}
	default:
		return hold(fmt.Sprintf("%q, which quorumguard does not know: it holds rather than guess; run a quorumguard that knows it", string(t))), []string{masters.MasterRole}
	}
}
