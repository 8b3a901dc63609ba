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
