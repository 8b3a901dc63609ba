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
// *UnsafeChangeError, *NotInSyncError, *FencedError, *NoQuorumError, *CallError. A Client
// never moves its own endpoints; Sync does, when its caller asks.
//
// View is a controller's one connection to etcd, over a Client it makes on first use. It
// alone decides which endpoints are dialled (chooseEndpoints: the endpoints given, else the
// voting members' client URLs from the last member list read with quorum, else the
// control-plane Machines' addresses it is handed, and those added beside the rest once every
// endpoint fails), and applies that after every such list and every membership change. It
// observes the members (Observed, built by JoinHealth), makes the changes with a Guard
// checked again after the fence, and hands out fencing tokens.
//
// It never decides which Machine to replace or when, never touches Machines, and never
// forces a change past a refusal, its own or etcd's.
package etcdmember
