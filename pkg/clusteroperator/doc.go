// Package clusteroperator keeps quorumguard's ClusterOperator status and its quorumguard_
// metrics in step with the control-plane controller's passes. A Reporter records each pass
// the controller observes, and on every replica keeps the metrics; the replica that leads
// reads what else the status looks at (the MachineHealthChecks, the ControlPlaneMachineSet,
// the stored ClusterOperator) and writes the status when it changes, by server-side apply
// under the field manager quorumguard: it owns its four conditions, its versions and its
// related objects, and another writer's condition types stay that writer's.
//
// What the status says is decided by pkg/operatorstatus; this package never decides it, and
// never touches etcd or the Machines.
package clusteroperator
