// Package etcdjoin is the node side of a replacement: it runs on a new control-plane node
// before etcd starts (an init container of the etcd static pod), waits until quorumguard has
// added the node's peer URL to the member list as a learner, and writes the environment file
// etcd starts from. It also recognises a restart (the data dir already belongs to a listed
// member at this peer URL: start at once) and a stale data dir (it belongs to a member the
// cluster no longer lists: move it aside, never delete it, and wait to be added afresh).
//
// It never changes membership: adding, promoting and removing members is the controller's
// job. Decide is the pure decision; Run gathers (member list, data dir) and acts.
package etcdjoin
