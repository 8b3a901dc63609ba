// Package endpoints publishes the etcd client URLs that consumers (a kube-apiserver operator,
// anything else that dials etcd) should use, and says which member removals must wait for
// them.
//
// The contract, for a consumer to implement:
//
//   - quorumguard keeps a ConfigMap in its own namespace (--endpoints-configmap, default
//     quorumguard-etcd-endpoints) with data `endpoints` (comma-separated https client URLs of
//     the voting members; a member on a deleting Machine is left out once its replacement
//     votes, see Want) and
//     `generation` (a decimal number, raised by one whenever the list changes).
//   - A consumer rolls the list out (restarts its apiservers with --etcd-servers set to it)
//     and then writes the annotation endpoints.quorumguard.io/ack-<consumer> with the
//     generation it rolled out. It may acknowledge a later generation than it first saw.
//   - quorumguard removes a member from etcd only when the current list leaves it out and
//     every consumer named in --endpoint-consumers has acknowledged the current generation.
//     With no consumers named, nothing waits.
//
// Published and Holds decide; Publisher reads and writes the ConfigMap.
package endpoints
