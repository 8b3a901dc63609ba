// Package machines keeps the control-plane Machines that the ControlPlaneMachineSet
// `cluster` describes: the desired number of them, each in the failure domain that
// pkg/failuredomain assigns to its index, each with the template's providerSpec. It does
// the ControlPlaneMachineSet operator's work through the quorum-protected replacement of
// pkg/controlplane: it only creates and deletes Machines, and the preDrain hook, learner,
// promotion and removal happen there.
//
// Plan decides; it is pure and returns one action, a reason, and the status the
// ControlPlaneMachineSet should show. The Reconciler gathers the input, confirms any
// action on a fresh read from the API server (never on the cache alone), takes it, and
// writes the status.
//
// What it never does: act while the set is Inactive or the input is invalid (both only
// report), have more than replicas+1 Machines, replace more than one Machine at a time,
// delete an old Machine under RollingUpdate before its replacement is a voting etcd member
// (unless the old one never became ready), or touch etcd beyond its fence: every action is
// taken only after the etcd fence accepts this leadership's token (quorum is there and no
// newer leadership has claimed one), as the quorum controller's changes are.
//
// # Naming
//
// A Machine it creates is named <prefix>-<random>-<index>, the random part five characters
// of the alphabet of k8s.io/apimachinery/pkg/util/rand. The prefix is
// spec.machineNamePrefix when set; otherwise it comes from the Machine being replaced, or
// else the Machine with the lowest index: a name whose part before the index is five
// characters of that alphabet was generated, and its prefix is the name without its last
// two "-" parts; any other name is an original <prefix>-<index>, and its prefix is the name
// without its last "-" part. Both cluster-x7q2z-master-0 and cluster-x7q2z-master-bcd42-0
// give cluster-x7q2z-master.
//
// # Comparing with the template
//
// A Machine is up to date when its providerSpec equals the template's once the failure
// domain fields are set alike in both (pkg/failuredomain.WithDomain writes the same domain
// into each), compared as decoded JSON: key order does not matter, and a field set to its
// zero value (null, "", false, 0, {} or []) counts as unset, as it would when decoded into
// the provider's Go type. Only the providerSpec is compared; labels, annotations, taints and
// lifecycle hooks are not.
package machines
