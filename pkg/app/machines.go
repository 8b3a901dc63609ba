package app

import (
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/pkg/masters"
)

// setupMachines registers the Machine controller, which creates and deletes control-plane
// Machines as the ControlPlaneMachineSet describes. With ManageMachines off it registers
// nothing (and returns nil): quorumguard then only protects quorum. It acts only while fence
// gives a token (this replica leads) and etcd's fence accepts that token (quorum is there
// and no newer leadership has claimed one), and while hold gives no reason (the
// ControlPlaneMachineSet operator is not active).
func setupMachines(mgr manager.Manager, o Options, fence masters.Fence, etcd machines.EtcdFence, hold func() string) (*machines.Reconciler, error) {
	if !o.ManageMachines {
		return nil, nil
	}
	r := &machines.Reconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Namespace:    o.Namespace,
		Hook:         o.Hook,
		PreTerminate: o.PreTerminate(),
		Fence:        fence,
		Etcd:         etcd,
		Recorder:     mgr.GetEventRecorder("quorumguard-machines"),
		PollInterval: o.PollInterval,
		Hold:         hold,
	}
	return r, r.SetupWithManager(mgr)
}
