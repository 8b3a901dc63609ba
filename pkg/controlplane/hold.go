package controlplane

import (
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// observeHeld records a pass made while another operator manages etcd membership and the
// hooks, or the control-plane topology leaves nothing to change (why): the metrics and the
// status see etcd as it is, and nothing is changed (no hook added or released, no
// membership change, no condition written, no endpoints published). The planner's next
// step is dropped, so nothing downstream counts it as taken.
func (r *Reconciler) observeHeld(st *snapshot, why string) {
	d := decide(st)
	d.Action = quorum.Action{Kind: quorum.None, Reason: "held: " + why}
	r.observe(st, d, st.etcdErr)
}
