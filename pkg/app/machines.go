package app

import (
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/machines"
)

// setupMachines registers the Machine controller, which creates and deletes control-plane
// Machines as the ControlPlaneMachineSet describes. With ManageMachines off it registers
// nothing: quorumguard then only protects quorum. It writes only while fence gives a token,
// that is, while this replica leads, and while hold gives no reason (the
// ControlPlaneMachineSet operator is not active).
func setupMachines(mgr manager.Manager, o Options, fence controlplane.Fence, hold func() string) error {
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
		Hold:         hold,
	}
	return r.SetupWithManager(mgr)
}
