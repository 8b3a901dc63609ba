package app

import (
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/machines"
)

// setupMachines registers the Machine controller, which creates and deletes control-plane
// Machines as the ControlPlaneMachineSet describes. With ManageMachines off it registers
// nothing: quorumguard then only protects quorum.
func setupMachines(mgr manager.Manager, o Options) error {
	if !o.ManageMachines {
		return nil
	}
	r := &machines.Reconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Namespace:    o.Namespace,
		Hook:         o.Hook,
		Fence:        controlplane.StaticFence(1),
		Recorder:     mgr.GetEventRecorder("quorumguard-machines"),
		PollInterval: o.PollInterval,
	}
	return r.SetupWithManager(mgr)
}
