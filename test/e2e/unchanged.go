package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/test/framework"
)

// Footprint is everything a controller could have changed: the etcd member list, the fence
// key's revision, and every control-plane Machine's resourceVersion (for Machines the
// simulated machine-api has no reason to touch: Running, or Deleting and held) and the
// parts quorumguard writes (preDrain hooks, the EtcdMember condition).
type Footprint struct {
	At       time.Time
	Members  []string
	FenceRev int64
	Machines map[string]string
	UIDs     map[string]bool
}

// TakeFootprint reads the footprint.
func TakeFootprint(ctx context.Context, c *framework.Cluster) (Footprint, error) {
	f := Footprint{At: time.Now(), Machines: map[string]string{}, UIDs: map[string]bool{}}
	cli, err := c.EtcdClient()
	if err != nil {
		return f, err
	}
	defer func() { _ = cli.Close() }()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := cli.MemberList(lctx)
	if err != nil {
		return f, err
	}
	for _, m := range list.Members {
		f.Members = append(f.Members, fmt.Sprintf("%x learner=%v", m.ID, m.IsLearner))
	}
	sort.Strings(f.Members)
	fence, err := cli.Get(lctx, etcdmember.DefaultFenceKey)
	if err != nil {
		return f, err
	}
	if len(fence.Kvs) > 0 {
		f.FenceRev = fence.Kvs[0].ModRevision
	}
	var ms machinev1beta1.MachineList
	if err := framework.RideOut(ctx, "list Machines", func() error {
		return c.Client.List(ctx, &ms, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"})
	}); err != nil {
		return f, err
	}
	for _, m := range ms.Items {
		f.UIDs[string(m.UID)] = true
		fp := fmt.Sprintf("hooks=%v preTerminate=%v", m.Spec.LifecycleHooks.PreDrain, m.Spec.LifecycleHooks.PreTerminate)
		if cond := framework.Condition(&m, masters.ConditionType); cond != nil {
			fp += fmt.Sprintf(" %s=%s/%s/%s", masters.ConditionType, cond.Status, cond.Reason, cond.Message)
		}
		switch phase := ptr.Deref(m.Status.Phase, ""); {
		case phase == framework.PhaseRunning && m.DeletionTimestamp == nil, m.DeletionTimestamp != nil && (len(m.Spec.LifecycleHooks.PreDrain) > 0 || len(m.Spec.LifecycleHooks.PreTerminate) > 0):
			fp += " resourceVersion=" + m.ResourceVersion
		}
		f.Machines[m.Name] = fp
	}
	return f, nil
}

// Changes lists what differs from an earlier footprint.
func (f Footprint) Changes(before Footprint) []string {
	var out []string
	if !slices.Equal(before.Members, f.Members) {
		out = append(out, fmt.Sprintf("etcd members %v became %v", before.Members, f.Members))
	}
	if before.FenceRev != f.FenceRev {
		out = append(out, fmt.Sprintf("the fence key was written (revision %d, then %d)", before.FenceRev, f.FenceRev))
	}
	for name, was := range before.Machines {
		if now, ok := f.Machines[name]; !ok {
			out = append(out, "Machine "+name+" is gone")
		} else if now != was {
			out = append(out, fmt.Sprintf("Machine %s changed: %s, then %s", name, was, now))
		}
	}
	for name := range f.Machines {
		if _, ok := before.Machines[name]; !ok {
			out = append(out, "Machine "+name+" appeared")
		}
	}
	sort.Strings(out)
	return out
}

// EventsSince lists the Events about the footprint's Machines (matched by UID) that
// quorumguard recorded at or after since, except the reports of a refusal by the fence.
func EventsSince(ctx context.Context, c *framework.Cluster, f Footprint, since time.Time) ([]string, error) {
	var evs corev1.EventList
	if err := framework.RideOut(ctx, "list Events", func() error {
		return c.Client.List(ctx, &evs, client.InNamespace(framework.MachineNamespace))
	}); err != nil {
		return nil, err
	}
	var out []string
	for _, e := range evs.Items {
		if !f.UIDs[string(e.InvolvedObject.UID)] {
			continue
		}
		at := e.LastTimestamp.Time
		if !e.EventTime.IsZero() {
			at = e.EventTime.Time
		}
		if at.Before(since.Truncate(time.Second)) {
			continue
		}
		if strings.Contains(e.Message, "fenced: ") {
			continue // the refusal of the stale leader's own attempt: what should happen
		}
		out = append(out, fmt.Sprintf("%s %s on %s: %s", at.Format("15:04:05"), e.Reason, e.InvolvedObject.Name, e.Message))
	}
	return out, nil
}
