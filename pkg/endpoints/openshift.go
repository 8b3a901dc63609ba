package endpoints

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// OpenShift's contract, as its etcd and kube-apiserver operators keep it.
const (
	// EtcdEndpointsNamespace/EtcdEndpointsName is the ConfigMap the etcd operator keeps: data
	// maps each voting member's ID, lower-case hex without padding, to its peer URL's IP.
	EtcdEndpointsNamespace = "openshift-etcd"
	EtcdEndpointsName      = "etcd-endpoints"
	// BootstrapAnnotation carries the bootstrap member's IP while the cluster is being
	// installed; the etcd operator renames it to BootstrapAnnotation+"-" once bootstrap is
	// over and the revision is stable, so that clients forget it.
	BootstrapAnnotation = "alpha.installer.openshift.io/etcd-bootstrap"
	// BootstrapMember is the installer's temporary member, never published.
	BootstrapMember = "etcd-bootstrap"
	// KubeAPIServerNamespace holds the kube-apiserver operator's revisions: the ConfigMap
	// RevisionConfigPrefix+N has the KubeAPIServerConfig of revision N under
	// RevisionConfigKey, whose apiServerArguments["etcd-servers"] are the etcd URLs that
	// revision's apiservers dial.
	KubeAPIServerNamespace = "openshift-kube-apiserver"
	RevisionConfigPrefix   = "config-"
	RevisionConfigKey      = "config.yaml"
	// KubeAPIServerName is the kube-apiserver operator's one object,
	// kubeapiservers.operator.openshift.io/cluster.
	KubeAPIServerName = "cluster"
)

// OpenShiftData is the data of openshift-etcd/etcd-endpoints for these members: the members
// Listed (the voting ones, less a leaving one once enough others vote) except etcd-bootstrap,
// each as ID in lower-case hex → its first peer URL's IP, as the etcd operator writes it. A
// listed member whose peer URL names no IP address is an error: nothing is published on a
// guess.
func OpenShiftData(members []Member, desired int) (map[string]string, error) {
	out := map[string]string{}
	for _, m := range Listed(members, desired) {
		if m.Name == BootstrapMember {
			continue
		}
		ip, err := PeerIP(m)
		if err != nil {
			return nil, err
		}
		out[strconv.FormatUint(m.ID, 16)] = ip
	}
	return out, nil
}

// PeerIP is the IP of a member's first peer URL, as the etcd operator reads it.
func PeerIP(m Member) (string, error) {
	if len(m.PeerURLs) == 0 {
		return "", fmt.Errorf("etcd member %x (%s) has no peer URL", m.ID, m.Name)
	}
	u, err := url.Parse(m.PeerURLs[0])
	if err != nil {
		return "", fmt.Errorf("etcd member %x (%s): peer URL %q: %w", m.ID, m.Name, m.PeerURLs[0], err)
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil {
		return "", fmt.Errorf("etcd member %x (%s): peer URL %q names no IP address", m.ID, m.Name, m.PeerURLs[0])
	}
	return ip.String(), nil
}

// BootstrapAnnotations carries the bootstrap annotation as the etcd operator does: kept
// while the bootstrap member is still in the member list or the kube-apiserver revision is
// not stable, renamed with a trailing "-" once both are over. Other annotations are left as
// they are. It returns the annotations to write and whether they changed.
func BootstrapAnnotations(existing map[string]string, bootstrapMember, revisionStable bool) (map[string]string, bool) {
	ip, ok := existing[BootstrapAnnotation]
	if !ok || bootstrapMember || !revisionStable {
		return existing, false
	}
	out := maps.Clone(existing)
	delete(out, BootstrapAnnotation)
	out[BootstrapAnnotation+"-"] = ip
	return out, true
}

// NodeRevision is one node's entry in kubeapiservers.operator.openshift.io/cluster
// status.nodeStatuses.
type NodeRevision struct {
	Node            string
	Current, Target int32
}

// Rollout is the kube-apiserver operator's state as read: its latest revision, where each
// node is, and the etcd servers of the revisions that matter (the latest and each node's
// current one). Unreadable says why it could not be read at all; Unread, per revision, why
// that revision's etcd servers could not.
type Rollout struct {
	Unreadable string
	Latest     int32
	Nodes      []NodeRevision
	Servers    map[int32][]string
	Unread     map[int32]string
}

// Stable says every node runs the latest revision.
func (r Rollout) Stable() bool {
	if r.Unreadable != "" || r.Latest == 0 || len(r.Nodes) == 0 {
		return false
	}
	for _, n := range r.Nodes {
		if n.Current != r.Latest {
			return false
		}
	}
	return true
}

// Revisions are the revisions whose etcd servers RolloutHolds needs: the latest and every
// node's current one, ascending.
func (r Rollout) Revisions() []int32 {
	out := []int32{r.Latest}
	for _, n := range r.Nodes {
		out = append(out, n.Current)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > 0 && out[0] == 0 {
		out = out[1:]
	}
	return out
}

// names says an etcd server URL list dials ip.
func names(servers []string, ip string) bool {
	want := net.ParseIP(ip)
	for _, s := range servers {
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		if got := net.ParseIP(u.Hostname()); got != nil && got.Equal(want) {
			return true
		}
	}
	return false
}

// RolloutHolds returns, for each voting member whose removal must wait, why. data is what
// openshift-etcd/etcd-endpoints lists now. A member may go only when:
//   - etcd-endpoints no longer lists it (its ID or, under another ID, its IP), and
//   - every node of the kube-apiserver runs a revision whose etcd servers do not name its
//     IP: the apiservers no longer dial it, on any node.
//
// With r nil (the wait turned off) only the first condition holds. Nothing read is guessed at: an unreadable rollout, a revision whose etcd servers cannot be
// read, or a rollout with no nodes holds every voting member. A learner is never held: no
// apiserver dials one (etcd refuses it client requests). Example: member 1a at 10.0.0.1 left
// out of etcd-endpoints; the latest revision 7 leaves out 10.0.0.1, nodes m0 and m1 run 7,
// m2 runs 6, which names it: "waiting for kube-apiserver revision 7, whose etcd servers leave
// out member 1a (10.0.0.1), on node m2 (at revision 6)".
func RolloutHolds(members []Member, data map[string]string, r *Rollout) map[uint64]string {
	listedIP := map[string]bool{}
	for _, ip := range data {
		if p := net.ParseIP(ip); p != nil {
			listedIP[p.String()] = true
		}
	}
	out := map[uint64]string{}
	for _, m := range members {
		if !m.Voting {
			continue
		}
		id := strconv.FormatUint(m.ID, 16)
		ip, err := PeerIP(m)
		switch {
		case err != nil:
			out[m.ID] = fmt.Sprintf("removal waits: %v, so whether the apiservers still dial it cannot be told", err)
			continue
		case data[id] != "" || listedIP[ip]:
			out[m.ID] = fmt.Sprintf("%s/%s still lists member %x (%s); its removal waits until it is left out and the kube-apiserver has rolled that out", EtcdEndpointsNamespace, EtcdEndpointsName, m.ID, ip)
			continue
		}
		if r == nil {
			continue
		}
		if why := rolloutWait(*r, m.ID, ip); why != "" {
			out[m.ID] = why
		}
	}
	return out
}

// rolloutWait says why the apiservers may still dial ip, or "" when none does.
func rolloutWait(r Rollout, id uint64, ip string) string {
	switch {
	case r.Unreadable != "":
		return fmt.Sprintf("removal of member %x (%s) waits: the kube-apiserver rollout cannot be read (%s)", id, ip, r.Unreadable)
	case len(r.Nodes) == 0:
		return fmt.Sprintf("removal of member %x (%s) waits: kubeapiservers.operator.openshift.io/%s reports no nodes", id, ip, KubeAPIServerName)
	}
	if why, ok := r.Unread[r.Latest]; ok {
		return fmt.Sprintf("removal of member %x (%s) waits: the etcd servers of kube-apiserver revision %d cannot be read (%s)", id, ip, r.Latest, why)
	}
	if names(r.Servers[r.Latest], ip) {
		return fmt.Sprintf("waiting for the kube-apiserver operator to make a revision without member %x (%s): the latest, revision %d, still dials it", id, ip, r.Latest)
	}
	var behind []string
	for _, n := range r.Nodes {
		switch why, unread := r.Unread[n.Current]; {
		case n.Current == 0:
			behind = append(behind, fmt.Sprintf("%s (no revision yet)", n.Node))
		case unread:
			behind = append(behind, fmt.Sprintf("%s (at revision %d, whose etcd servers cannot be read: %s)", n.Node, n.Current, why))
		case names(r.Servers[n.Current], ip):
			behind = append(behind, fmt.Sprintf("%s (at revision %d)", n.Node, n.Current))
		}
	}
	if len(behind) == 0 {
		return ""
	}
	word := "node"
	if len(behind) > 1 {
		word = "nodes"
	}
	return fmt.Sprintf("waiting for kube-apiserver revision %d, whose etcd servers leave out member %x (%s), on %s %s", r.Latest, id, ip, word, strings.Join(behind, ", "))
}
