package controlplane

import (
	"context"
	"fmt"
	"net"
	"sort"

	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// EtcdMember is one member as the controller observes it.
type EtcdMember struct {
	etcdmember.Member
	Leader bool
	// Progress is a learner's raft index over the leader's, 0..1.
	Progress float64
}

// Etcd lists the etcd calls the controller makes. Every membership change carries the
// fencing token of the leadership that asks for it.
type Etcd interface {
	// Observe returns a fresh member list (never cached) with health, leader and progress.
	// With quorum lost it may return a member's own view of the membership together with
	// an *etcdmember.NoQuorumError: that view is reported, never acted on.
	Observe(ctx context.Context) ([]EtcdMember, error)
	AddLearner(ctx context.Context, token uint64, peerURL string) (uint64, error)
	Promote(ctx context.Context, token, id uint64) error
	Remove(ctx context.Context, token, id uint64) error
	MoveLeader(ctx context.Context, token, to uint64) error
	// SetEndpoints points the client at these client URLs.
	SetEndpoints(endpoints []string)
}

// snapshot is what one pass gathered.
type snapshot struct {
	machines []machinev1beta1.Machine
	state    quorum.State
	etcdErr  error
	mapping  etcdmember.Mapping
}

func (r *Reconciler) gather(ctx context.Context) (*snapshot, error) {
	var list machinev1beta1.MachineList
	if err := r.Client.List(ctx, &list, client.InNamespace(r.Namespace), client.MatchingLabels{RoleLabel: "master"}); err != nil {
		return nil, fmt.Errorf("list control-plane Machines in %s: %w", r.Namespace, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	st := &snapshot{machines: list.Items}
	desired, err := r.desiredReplicas(ctx)
	if err != nil {
		return nil, err
	}
	st.state.Desired = desired

	// Until a member list has been seen, the Machines' addresses are the endpoints.
	if len(r.endpoints) == 0 {
		if eps := MachineEndpoints(list.Items); len(eps) > 0 {
			r.Etcd.SetEndpoints(eps)
		}
	}
	observed, err := r.Etcd.Observe(ctx)
	if err != nil {
		st.etcdErr = err
		if len(observed) == 0 {
			return st, nil //nolint:nilerr // an unreachable etcd is part of the snapshot, reported and acted on
		}
	}
	var plain []etcdmember.Member
	var clientURLs []string
	for _, m := range observed {
		plain = append(plain, m.Member)
		if m.Started {
			clientURLs = append(clientURLs, m.ClientURLs...)
		}
	}
	// Endpoints follow the membership, so a client outlives every original member. A view
	// read without quorum may be stale and does not move them.
	if len(clientURLs) > 0 && err == nil {
		sort.Strings(clientURLs)
		if fmt.Sprint(clientURLs) != fmt.Sprint(r.endpoints) {
			r.endpoints = clientURLs
			r.Etcd.SetEndpoints(clientURLs)
		}
	}
	addrs := make([]etcdmember.MachineAddrs, 0, len(list.Items))
	for _, m := range list.Items {
		addrs = append(addrs, etcdmember.MachineAddrs{Name: m.Name, InternalIPs: internalIPs(&m)})
	}
	st.mapping = etcdmember.MapMachines(plain, addrs)
	conflicted := map[string]bool{}
	for _, c := range st.mapping.Conflicts {
		for _, name := range c.Machines {
			conflicted[name] = true
		}
	}
	for _, m := range observed {
		st.state.Members = append(st.state.Members, quorum.Member{
			ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, Learner: m.IsLearner, Started: m.Started,
			Healthy: m.Healthy, Leader: m.Leader, Progress: m.Progress, Machine: st.mapping.MachineOf[m.ID],
		})
	}
	for i := range list.Items {
		m := &list.Items[i]
		qm := quorum.Machine{
			Name: m.Name, Deleting: m.DeletionTimestamp != nil, Running: ptr.Deref(m.Status.Phase, "") == "Running",
			HasHook: hooks.Has(m, r.Hook), InternalIPs: internalIPs(m), AddressConflict: conflicted[m.Name],
		}
		if ids := st.mapping.MembersOf[m.Name]; len(ids) > 0 {
			qm.MemberID = ids[0]
		}
		if c := condition(m); c != nil && c.Reason == quorum.ReasonHookReleased {
			qm.ReleasedByUs = true
		}
		st.state.Machines = append(st.state.Machines, qm)
	}
	return st, nil
}

// desiredReplicas comes from the ControlPlaneMachineSet, or the flag when there is none.
func (r *Reconciler) desiredReplicas(ctx context.Context) (int, error) {
	var cpms machinev1.ControlPlaneMachineSet
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: CPMSName}, &cpms)
	switch {
	case apierrors.IsNotFound(err):
		return r.DefaultReplicas, nil
	case err != nil:
		return 0, fmt.Errorf("read ControlPlaneMachineSet %s/%s: %w", r.Namespace, CPMSName, err)
	case cpms.Spec.Replicas == nil:
		return r.DefaultReplicas, nil
	default:
		return int(*cpms.Spec.Replicas), nil
	}
}

func internalIPs(m *machinev1beta1.Machine) []string {
	var out []string
	for _, a := range m.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address != "" {
			out = append(out, a.Address)
		}
	}
	return out
}

// MachineEndpoints are the etcd client URLs (port 2379) on the InternalIPs of the Machines
// that are not being deleted.
func MachineEndpoints(ms []machinev1beta1.Machine) []string {
	var out []string
	for i := range ms {
		if ms[i].DeletionTimestamp != nil {
			continue
		}
		for _, ip := range internalIPs(&ms[i]) {
			out = append(out, "https://"+net.JoinHostPort(ip, "2379"))
		}
	}
	return out
}

func condition(m *machinev1beta1.Machine) *machinev1beta1.Condition {
	for i := range m.Status.Conditions {
		if m.Status.Conditions[i].Type == ConditionType {
			return &m.Status.Conditions[i]
		}
	}
	return nil
}
