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
//     deletes no Machine;
//   - the control-plane topology (infrastructures.config.openshift.io/cluster
//     status.controlPlaneTopology) says which Machines hold etcd members: master Machines
//     on HighlyAvailable (also when the object, its API or the field is absent), master
//     and arbiter Machines on HighlyAvailableArbiter. On DualReplica (Pacemaker owns
//     membership), SingleReplica, External and any value quorumguard does not know, it
//     changes no membership and releases no hook, and says why in its ClusterOperator.
//
// Decide is pure; Gather reads the four objects; Guard re-reads them periodically, exports
// the verdict as a metric and an Event, and answers the controllers' Hold questions. It
// never writes anything to the cluster but Events.
package coexist
