// Package operatorstatus decides what quorumguard reports about itself: the conditions,
// versions and related objects of its ClusterOperator, whether the MachineHealthChecks that
// target control-plane Machines are safe for etcd, and the Prometheus series that describe
// each pass. It also defines the read-only picture that `quorumguard status` prints.
//
// Decisions are pure functions over what a pass observed, the time and the previous status.
// Findings that come from a single probe (an unhealthy member, a lost quorum, etcd out of
// reach) only count once they have held for a short while, so one failed probe does not make
// the operator flap between Degraded and not.
//
// It never talks to the API server or etcd: pkg/clusteroperator gathers its input and writes
// the status, and pkg/inspect fills the Report.
package operatorstatus
