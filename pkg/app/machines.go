package app

import (
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/machines"
)

// setupMachines registers the Machine controller, which creates and deletes control-plane
// Machines as the ControlPlaneMachineSet describes. With ManageMachines off it registers
// nothing: quorumguard then only protects quorum. It writes only while fence gives a token,
// that is, while this replica leads.
func setupMachines(mgr manager.Manager, o Options, fence controlplane.Fence) error {
	if !o.ManageMachines {
		return nil
	}
	r := &machines.Reconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Namespace:    o.Namespace,
		Hook:         o.Hook,
		Fence:        fence,
		Recorder:     mgr.GetEventRecorder("quorumguard-machines"),
		PollInterval: o.PollInterval,
	}
	return r.SetupWithManager(mgr)
}
