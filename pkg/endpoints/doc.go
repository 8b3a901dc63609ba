// Package endpoints publishes the etcd client URLs that consumers (a kube-apiserver operator,
// anything else that dials etcd) should use, and says which member removals must wait for
// them.
//
// The contract, for a consumer to implement:
//
//   - quorumguard keeps a ConfigMap in its own namespace (--endpoints-configmap, default
//     quorumguard-etcd-endpoints) with data `endpoints` (comma-separated https client URLs of
//     the voting members, sorted in byte order; a member on a deleting Machine is left out
//     once its replacement votes, see Want), `digest` ("sha256:" and the lower-case hex
//     SHA-256 of the `endpoints` value exactly as stored, see Digest) and `generation` (a
//     decimal number raised by one whenever the list changes, for people to read; it starts
//     again at 1 if the ConfigMap is recreated, so it is never acknowledged).
//   - A consumer rolls the list out (restarts its apiservers with --etcd-servers set to it)
//     and then writes the annotation endpoints.quorumguard.io/ack-<consumer> with the digest
//     of the list it rolled out: computed from that list, or `digest` read together with it.
//     The acknowledgement says "I run this content"; it names no ConfigMap and no counter.
//   - quorumguard removes a member from etcd only when the current list leaves it out and
//     every consumer named in --endpoint-consumers has acknowledged exactly the digest of the
//     current list. An acknowledgement of any other list (an earlier one, or one carried over
//     into a recreated ConfigMap that now lists something else), and one that is not a digest
//     (a generation number, as consumers wrote before digests), hold every removal. A list
//     that comes back (A, B, A) has A's digest again, and an acknowledgement of A counts: the
//     consumer runs the very content published. With no consumers named, nothing waits.
//
// Want, Digest and Holds decide; Publisher reads and writes the ConfigMap.
package endpoints
