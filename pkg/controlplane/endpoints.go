package controlplane

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/quorumguard/quorumguard/pkg/endpoints"
)

// publish brings the published etcd endpoints up to date with the membership and sets the
// removals that must wait for their consumers into the planner's input. With consumers
// declared and the ConfigMap unreadable, every removal waits: none is made on a guess.
func (r *Reconciler) publish(ctx context.Context, st *snapshot) {
	if r.Endpoints == nil {
		return
	}
	placed := st.state.Placed()
	deleting := map[string]bool{}
	for _, m := range st.state.Machines {
		deleting[m.Name] = m.Deleting
	}
	ms := make([]endpoints.Member, len(st.observed))
	for i, m := range st.observed {
		ms[i] = endpoints.Member{ID: m.ID, ClientURLs: m.ClientURLs, Voting: m.Started && !m.IsLearner,
			Leaving: deleting[placed[i].Machine], Healthy: m.Healthy}
	}
	before := r.published
	pub, err := r.Endpoints.Sync(ctx, endpoints.Want(ms, st.state.Desired))
	log := ctrl.LoggerFrom(ctx)
	if err != nil {
		log.Error(err, "cannot publish the etcd endpoints")
		if len(r.Endpoints.Consumers) > 0 {
			st.state.RemovalHeld = map[uint64]string{}
			for _, m := range ms {
				st.state.RemovalHeld[m.ID] = fmt.Sprintf("removal waits: the published etcd endpoints cannot be read or written (%v)", err)
			}
		}
		return
	}
	r.published = pub.Generation
	if pub.Generation != before {
		log.Info("published etcd endpoints", "generation", pub.Generation, "endpoints", pub.Endpoints, "configMap", r.Endpoints.Namespace+"/"+r.Endpoints.Name)
	}
	st.state.RemovalHeld = endpoints.Holds(ms, pub, r.Endpoints.Consumers)
}
