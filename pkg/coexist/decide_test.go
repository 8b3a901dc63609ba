package coexist

import (
	"strings"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		in                       Input
		quorumHas, machinesHas   string
		quorumFree, machinesFree bool
	}{
		{name: "nothing else there", in: Input{ClusterOperator: "quorumguard"}, quorumFree: true, machinesFree: true},
		{name: "the etcd operator Managed", in: Input{EtcdOperatorFound: true, EtcdManagementState: "Managed"},
			quorumHas: "spec.managementState is Managed", machinesFree: true},
		{name: "the etcd operator with the default state, which is Managed", in: Input{EtcdOperatorFound: true},
			quorumHas: "Managed (the default)", machinesFree: true},
		{name: "the etcd operator forced", in: Input{EtcdOperatorFound: true, EtcdManagementState: "Force"},
			quorumHas: "is Force", machinesFree: true},
		{name: "the etcd operator Unmanaged", in: Input{EtcdOperatorFound: true, EtcdManagementState: "Unmanaged"},
			quorumFree: true, machinesFree: true},
		{name: "the etcd operator Removed", in: Input{EtcdOperatorFound: true, EtcdManagementState: "Removed"},
			quorumFree: true, machinesFree: true},
		{name: "another writer of the ClusterOperator's status", in: Input{ClusterOperator: "etcd", StatusWriters: []string{"cluster-etcd-operator", "cluster-etcd-operator"}},
			quorumHas: "ClusterOperator etcd's status is also written by cluster-etcd-operator;", machinesFree: true},
		{name: "both", in: Input{EtcdOperatorFound: true, ClusterOperator: "etcd", StatusWriters: []string{"b", "a"}},
			quorumHas: "is Managed (the default)); set it to Unmanaged to hand quorum protection over to quorumguard; ClusterOperator etcd's status is also written by a, b", machinesFree: true},
		{name: "the ControlPlaneMachineSet operator Available", in: Input{CPMSOperatorAvailable: configv1.ConditionTrue},
			quorumFree: true, machinesHas: "ClusterOperator control-plane-machine-set is Available"},
		{name: "the ControlPlaneMachineSet operator not Available", in: Input{CPMSOperatorAvailable: configv1.ConditionFalse},
			quorumFree: true, machinesFree: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Decide(tc.in)
			if tc.quorumFree != (v.Quorum == "") || !strings.Contains(v.Quorum, tc.quorumHas) {
				t.Errorf("Quorum = %q; want free=%v, containing %q", v.Quorum, tc.quorumFree, tc.quorumHas)
			}
			if tc.machinesFree != (v.Machines == "") || !strings.Contains(v.Machines, tc.machinesHas) {
				t.Errorf("Machines = %q; want free=%v, containing %q", v.Machines, tc.machinesFree, tc.machinesHas)
			}
		})
	}
}

func TestDecideTopology(t *testing.T) {
	for _, tc := range []struct {
		topology configv1.TopologyMode
		holdHas  string
		roles    string
	}{
		{topology: "", roles: "master"},
		{topology: configv1.HighlyAvailableTopologyMode, roles: "master"},
		{topology: configv1.HighlyAvailableArbiterMode, roles: "master,arbiter"},
		{topology: configv1.DualReplicaTopologyMode, holdHas: "is DualReplica: Pacemaker owns etcd membership", roles: "master"},
		{topology: configv1.SingleReplicaTopologyMode, holdHas: "is SingleReplica: one etcd member has no quorum to protect", roles: "master"},
		{topology: configv1.ExternalTopologyMode, holdHas: "is External: etcd runs outside this cluster", roles: "master"},
		{topology: "TripleReplica", holdHas: `is "TripleReplica", which quorumguard does not know: it holds rather than guess`, roles: "master"},
		{topology: "highlyavailable", holdHas: `is "highlyavailable", which quorumguard does not know`, roles: "master"},
	} {
		t.Run(string(tc.topology), func(t *testing.T) {
			v := Decide(Input{Topology: tc.topology})
			if (tc.holdHas == "") != (v.Topology == "") || !strings.Contains(v.Topology, tc.holdHas) {
				t.Errorf("Topology = %q; want containing %q (empty: %v)", v.Topology, tc.holdHas, tc.holdHas == "")
			}
			if v.Topology != "" && !strings.HasPrefix(v.Topology, TopologyHoldPrefix) {
				t.Errorf("Topology = %q; want it to start with %q", v.Topology, TopologyHoldPrefix)
			}
			if got := strings.Join(v.Roles, ","); got != tc.roles {
				t.Errorf("Roles = %s; want %s", got, tc.roles)
			}
			if v.Quorum != "" || v.Machines != "" {
				t.Errorf("the topology alone held another scope: %+v", v)
			}
		})
	}
}
