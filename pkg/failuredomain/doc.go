// Package failuredomain decides which failure domain each control-plane
// Machine belongs in, and which Machines must move to keep the domains
// balanced. It reads the failure domains of a ControlPlaneMachineSet, reads
// and writes a Machine's domain in its providerSpec, and plans placement. It
// is pure: it never talks to the API server, never reads the clock or files,
// never creates or deletes Machines and never decides when a move is safe for
// etcd quorum; callers gather the state, call it, and act on the answer.
//
// # Domains
//
// FromControlPlaneMachineSet and Parse turn
// spec.template.machines_v1beta1_machine_openshift_io.failureDomains into
// Domains sorted by Key: the name (the availability zone on AWS, Azure, GCP
// and OpenStack, the name on vSphere and Nutanix), then the rest of the
// identity (AWS subnet, Azure subnet, OpenStack root volume). They refuse an
// unsupported platform, a missing list for the platform, a list for another
// platform and an empty name, with a *FieldError naming the object and the
// field path. A domain listed twice counts once, as the ControlPlaneMachineSet
// operator reads the list. An AWS domain may give only a subnet: the zone is
// then the template's, the domain is named by its subnet, and only the
// subnet is compared and written. No failureDomains, an empty platform with
// no lists, or an empty list means no domains.
//
// # Indexes
//
// IndexOf reads the index from a Machine's name. AssignIndexes gives every
// selected Machine its index and adopts one whose name carries none at the
// lowest free index, as that operator does; the Machine controller records
// the adoption in IndexAnnotation and the quorum controller's
// MayHoldMember accepts exactly the Machines it can adopt.
//
// # ProviderSpecs
//
// MachineDomain reads a Machine's domain from its providerSpec and reports a
// Machine that is in no listed domain as unmatched, not as an error.
// WithDomain writes a domain into a copy of the template's providerSpec. Both
// work on the JSON as generic maps, so fields this package does not know are
// kept. The fields are:
//
//	AWS        placement.availabilityZone, subnet.{id,arn,filters}
//	Azure      zone, subnet
//	GCP        zone
//	OpenStack  availabilityZone, rootVolume.{availabilityZone,volumeType}
//	VSphere    workspace.{server,datacenter,datastore,resourcePool,folder}
//	Nutanix    failureDomain.name
//
// vSphere and Nutanix domain names refer to definitions in the Infrastructure
// object, which this package does not read. Nutanix providerSpecs have a
// failureDomain.name field, so the name is written and read there; the
// cluster and subnets of the named domain are not filled in, so the template
// must already carry ones the Nutanix machine controller accepts for every
// domain. vSphere providerSpecs have no field for the domain name: a domain
// shows only as the workspace its Infrastructure definition produces. The
// caller copies that definition into Domain.VSphereTopology; without it
// reading and writing fail with ErrUnresolved rather than guess, since a
// guess would make every Machine look misplaced. Networks and the VM
// template of a vSphere domain are not written.
//
// # Placement
//
// Place takes the desired replicas, the domain Keys and the Machines (name,
// index, domain, deleting, ready) and returns the target domain of every
// index, a reason for each, and the moves. The indexes are those in use
// (a deleting Machine's index still needs a Machine) plus the lowest unused
// ones from 0 up to replicas; more indexes in use than replicas is a
// *TooManyIndexesError. With no domains there is no constraint and no move.
//
// Balancing rule: every domain ends with n/k or n/k+1 of the n indexes, and
// no balanced layout moves fewer. Which indexes move, and where, is what the
// ControlPlaneMachineSet operator's reconcileMappings decides: domains in use
// first, then the rest, alphabetically, are dealt round-robin over the
// indexes as slots; each index with a live Machine, lowest first, claims the
// lowest free slot of its domain; the indexes left are walked in ascending
// order, and one in a domain holding more than ceil(n/k) moves to the domain
// of the slot at its index, while one in a domain within that bound stays.
// So in an over-used domain the lowest unmatched index moves first and the
// highest that still fit stay: Machines 0 to 4 in c, c, c, a, b move index 1
// to b. A fresh set of 5 in domains a, b, c is laid out a, b, c, a, b. Where
// the operator's layout is not balanced or moves more (a domain added to a
// set whose count it cannot balance under ceil(n/k), an index with Machines
// in two domains), Place's own layout stands: each domain keeps its lowest
// indexes up to its share, and the rest go lowest index first to the domain
// holding the fewest, alphabetically first among equals. Place's own comment
// works both through.
//
// Move order: first indexes with no usable Machine (none at all, or only a
// deleting one), then indexes whose Machines are all not ready, then indexes
// with a ready Machine; lowest index first within each group. Fixing what
// is already down first never takes a working etcd member away before it has
// to. The caller carries out the first move, waits, and calls Place again.
//
// An index whose Machines are all deleting holds no domain: its replacement
// goes where balance needs it, and back to the domain it was in only when
// that is as good as any.
//
// The result does not depend on the order of the inputs.
package failuredomain
