// Package etcdmember changes etcd membership one safe step at a time while control-plane
// Machines are replaced: add a learner, promote it, remove the old member, move leadership.
//
// Its guard, CheckChange, applies pkg/quorum's Check (the one home of the quorum rules: a
// learner never counts; healthy voting members must stay at or above quorum after every
// change; one learner at a time) to the member list it has just read; Count counts with the
// same arithmetic. Placing members on Machines is pkg/quorum's Map, not this package's.
//
// Client, over go.etcd.io/etcd/client/v3 with mutual TLS and bounded
// timeouts. State lists the members and probes each through its own endpoint in parallel
// (a linearizable read for a voter, Status for a learner); when the linearizable list
// fails and one member's own view shows quorum lost, it returns that view with a
// *NoQuorumError, for reporting only. Each membership change fences
// with the caller's token first, then refuses what CheckChange refuses, and only then asks
// etcd, so a controller that lost leadership changes nothing. WaitPromote promotes a
// learner as soon as etcd finds it in sync; RemoveMember moves leadership away from the
// member it removes. Errors are typed and name the endpoint and the member:
// *UnreachableError, *CertificateError, *TimeoutError, *MemberNotFoundError,
// *UnsafeChangeError, *NotInSyncError, *FencedError, *NoQuorumError, *CallError.
//
// It never decides which Machine to replace or when, never touches Machines, and never
// forces a change past a refusal, its own or etcd's.
package etcdmember
