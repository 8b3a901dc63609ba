package coexist

import (
	"fmt"
	"slices"
	"strings"

	configv1 "github.com/openshift/api/config/v1"
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
}

// Verdict says what quorumguard must leave alone, and why, in words a person can act on.
// An empty reason means quorumguard may act.
type Verdict struct {
	// Quorum: etcd membership, the preDrain hooks and the ClusterOperator.
	Quorum string
	// Machines: creating and deleting control-plane Machines.
	Machines string
}

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
	return v
}
