package controlplane

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
)

// publish brings the published etcd endpoints up to date with the membership, in each
// contract the controller keeps (the generic ConfigMap, OpenShift's etcd-endpoints), and sets
// the removals that must wait for their consumers into the planner's input. What cannot be
// read holds every removal it governs: none is made on a guess.
func (r *Reconciler) publish(ctx context.Context, st *snapshot) {
	if r.Endpoints == nil && r.OpenShift == nil {
		return
	}
	placed := st.state.Placed()
	deleting := map[string]bool{}
	for _, m := range st.state.Machines {
		deleting[m.Name] = m.Deleting
	}
	ms := make([]endpoints.Member, len(st.observed))
	for i, m := range st.observed {
		ms[i] = endpoints.Member{ID: m.ID, Name: m.Name, ClientURLs: m.ClientURLs, PeerURLs: m.PeerURLs, Voting: m.Started && !m.IsLearner,
			Leaving: deleting[placed[i].Machine], Healthy: m.Healthy}
	}
	held := map[uint64]string{}
	hold := func(h map[uint64]string) {
		for id, why := range h {
			if held[id] != "" {
				why = held[id] + "; " + why
			}
			held[id] = why
		}
	}
	hold(r.publishGeneric(ctx, st, ms))
	hold(r.publishOpenShift(ctx, st, ms))
	if len(held) > 0 {
		st.state.RemovalHeld = held
	}
}

// publishGeneric keeps quorumguard's own contract (pkg/endpoints, Publisher).
func (r *Reconciler) publishGeneric(ctx context.Context, st *snapshot, ms []endpoints.Member) map[uint64]string {
	if r.Endpoints == nil {
		return nil
	}
	before := r.published
	pub, err := r.Endpoints.Sync(ctx, endpoints.Want(ms, st.state.Desired))
	log := ctrl.LoggerFrom(ctx)
	if err != nil {
		log.Error(err, "cannot publish the etcd endpoints")
		if len(r.Endpoints.Consumers) == 0 {
			return nil
		}
		out := map[uint64]string{}
		for _, m := range ms {
			out[m.ID] = fmt.Sprintf("removal waits: the published etcd endpoints cannot be read or written (%v)", err)
		}
		return out
	}
	r.published = pub.Generation
	if pub.Generation != before {
		log.Info("published etcd endpoints", "generation", pub.Generation, "endpoints", pub.Endpoints, "configMap", r.Endpoints.Namespace+"/"+r.Endpoints.Name)
	}
	return endpoints.Holds(ms, pub, r.Endpoints.Consumers)
}

// publishOpenShift keeps OpenShift's contract when the cluster has a kube-apiserver operator.
func (r *Reconciler) publishOpenShift(ctx context.Context, st *snapshot, ms []endpoints.Member) map[uint64]string {
	if r.OpenShift == nil {
		return nil
	}
	res := r.OpenShift.Sync(ctx, ms, st.state.Desired)
	log := ctrl.LoggerFrom(ctx)
	if res.Err != nil {
		log.Error(res.Err, "OpenShift's etcd endpoint contract: removals wait")
	}
	if res.Changed {
		log.Info("wrote etcd-endpoints", "configMap", endpoints.EtcdEndpointsNamespace+"/"+endpoints.EtcdEndpointsName, "members", res.Data)
	}
	return res.Holds
}
