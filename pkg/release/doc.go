// Package release is `quorumguard release`, the checked escape hatch for a control-plane
// Machine held in Deleting by quorumguard's preDrain hook, and for a dead etcd member no
// Machine accounts for.
//
// It reads the cluster through the controller's own pass (controlplane.DryRun), decides with
// a pure function (Decide) that places members with quorum.Map and checks every removal
// with quorum.Check, the rules the controller and etcdmember.CheckChange apply, and only then
// acts: it claims a fencing token of its own, removes the member through the fence
// (moving leadership away first if it leads), and releases the hook once a member list read
// after the fence shows no member on the Machine. Each step is printed and recorded as a
// ManualRelease Event on the Machine.
//
// It never removes a member when quorum would be lost, never removes a live member no
// Machine accounts for, and never releases a hook while a member may belong to the Machine
// without certainty; --force lifts only the waits the controller keeps for a margin (a
// replacement not yet promoted, a fault tolerance falling to 0).
package release
