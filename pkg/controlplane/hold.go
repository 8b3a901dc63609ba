package controlplane

import (
	"errors"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// observeHeld records a pass made while another operator manages etcd membership and the
// hooks: the metrics and the status see etcd as it is, and nothing is changed (no hook
// added or released, no membership change, no condition written, no endpoints published).
// The planner's next step is dropped, so nothing downstream counts it as taken.
func (r *Reconciler) observeHeld(st *snapshot) {
	var d quorum.Decision
	if st.etcdErr == nil {
		d = quorum.Decide(st.state)
	} else {
		var nq *etcdmember.NoQuorumError
		if errors.As(st.etcdErr, &nq) {
			d.FaultTolerance = nq.Counts.Tolerance
		}
		d.Members = st.state.Placed()
	}
	d.Action = quorum.Action{Kind: quorum.None, Reason: "another operator manages etcd membership and the hooks"}
	r.observe(st, d, st.etcdErr)
}
