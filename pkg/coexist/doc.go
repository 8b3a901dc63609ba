// Package coexist decides whether another operator already does quorumguard's work on this
// cluster, so that the two never act on the same objects:
//
//   - the etcd operator protects quorum while its etcds.operator.openshift.io/cluster is
//     Managed (or Force), and any other field manager that writes the status of the
//     ClusterOperator quorumguard reports through is taken as another operator too: then
//     quorumguard changes no etcd membership, adds or releases no hook, and does not write
//     that ClusterOperator;
//   - the ControlPlaneMachineSet operator manages control-plane Machines while its
//     ClusterOperator (control-plane-machine-set) is Available: then quorumguard creates and
//     deletes no Machine.
//
// Decide is pure; Gather reads the three objects; Guard re-reads them periodically, exports
// the verdict as a metric and an Event, and answers the controllers' Hold questions. It
// never writes anything to the cluster but Events.
package coexist
