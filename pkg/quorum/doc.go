// Package quorum decides the next step that keeps etcd quorate while control-plane Machines
// are replaced: add a learner for a new Machine, promote it, move leadership, remove the member
// of a deleting Machine, or release that Machine's preDrain hook. It works on a snapshot that
// the controller gathers (Machines, members, health, learner progress) and returns one action
// with a reason a person can read, plus the EtcdMember condition every Machine should carry.
//
// It never talks to the API server or etcd, never keeps state between calls, and never returns
// more than one membership change: the controller acts, then gathers again.
package quorum
