// Package inspect builds the read-only report `quorumguard status` prints. It reads through
// the controller's own code: the etcd view pkg/app builds for the controller, and one dry
// run of the control-plane controller's pass (controlplane.DryRun), so that the report and
// the controller cannot disagree on what they see or on the next step. It adds only what the
// controller does not read: the ClusterOperator and the MachineHealthChecks.
//
// It never writes anything, to the API server or to etcd.
package inspect
