package framework

import (
	"net"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
)

// Machine API vocabulary, as the real machine controller uses it.
const (
	MachineFinalizer = "machine.machine.openshift.io"
	RoleLabel        = "machine.openshift.io/cluster-api-machine-role"
	TypeLabel        = "machine.openshift.io/cluster-api-machine-type"
	ClusterLabel     = "machine.openshift.io/cluster-api-cluster"

	PhaseProvisioning = "Provisioning"
	PhaseProvisioned  = "Provisioned"
	PhaseRunning      = "Running"
	PhaseDeleting     = "Deleting"
	PhaseFailed       = "Failed"

	ConditionDrainable  machinev1beta1.ConditionType = "Drainable"
	ConditionDrained    machinev1beta1.ConditionType = "Drained"
	ConditionTerminable machinev1beta1.ConditionType = "Terminable"

	// ExcludeDrainAnnotation makes the machine-api skip a Machine's drain, and with it every
	// preDrain hook.
	ExcludeDrainAnnotation = "machine.openshift.io/exclude-node-draining"
)

// Condition returns a Machine's condition of type t, or nil.
func Condition(m *machinev1beta1.Machine, t machinev1beta1.ConditionType) *machinev1beta1.Condition {
	for i := range m.Status.Conditions {
		if m.Status.Conditions[i].Type == t {
			return &m.Status.Conditions[i]
		}
	}
	return nil
}

// InternalIP is the Machine's first InternalIP, or nil.
func InternalIP(m *machinev1beta1.Machine) net.IP {
	for _, a := range m.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(a.Address); ip != nil {
				return ip
			}
		}
	}
	return nil
}
