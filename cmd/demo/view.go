package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/test/framework"
)

type runtimeRaw = runtime.RawExtension

// view prints progress lines, and on a terminal also redraws a live picture in place.
type view struct {
	tty   bool
	mu    sync.Mutex
	lines []string
}

func newView() *view {
	st, err := os.Stdout.Stat()
	return &view{tty: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

func (v *view) line(s string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s = time.Now().Format("15:04:05 ") + s
	v.lines = append(v.lines, s)
	if !v.tty {
		fmt.Println(s)
	}
}

func (v *view) refresh(ctx context.Context, snapshot func(context.Context) string) {
	if !v.tty {
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		pic := snapshot(ctx)
		v.mu.Lock()
		last := v.lines[max(0, len(v.lines)-6):]
		fmt.Print("\033[H\033[2J" + pic + "\n" + strings.Join(last, "\n") + "\n")
		v.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type masterRow struct {
	name, phase, zone, reason string
	hook, deleting            bool
}

type memberRow struct {
	name    string
	learner bool
	leader  bool
	index   uint64
}

func (d *demo) masters(ctx context.Context) []masterRow {
	var list machinev1beta1.MachineList
	if err := d.cp.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"}); err != nil {
		return nil
	}
	var out []masterRow
	for _, m := range list.Items {
		r := masterRow{name: m.Name, phase: ptr.Deref(m.Status.Phase, ""), deleting: m.DeletionTimestamp != nil}
		for _, h := range m.Spec.LifecycleHooks.PreDrain {
			r.hook = r.hook || h.Name == hooks.Default.Name
		}
		if c := framework.Condition(&m, "EtcdMember"); c != nil {
			r.reason = c.Reason
		}
		var spec struct {
			Placement struct {
				AvailabilityZone string `json:"availabilityZone"`
			} `json:"placement"`
		}
		if m.Spec.ProviderSpec.Value != nil {
			_ = json.Unmarshal(m.Spec.ProviderSpec.Value.Raw, &spec)
		}
		r.zone = spec.Placement.AvailabilityZone
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (d *demo) members(ctx context.Context) []memberRow {
	cli, err := d.cluster.EtcdClient()
	if err != nil {
		return nil
	}
	defer cli.Close()
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	list, err := cli.MemberList(lctx)
	if err != nil {
		return nil
	}
	var out []memberRow
	for _, m := range list.Members {
		r := memberRow{name: m.Name, learner: m.IsLearner}
		if len(m.ClientURLs) > 0 {
			if st, err := cli.Status(lctx, m.ClientURLs[0]); err == nil {
				r.index, r.leader = st.RaftIndex, st.Leader == m.ID
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (d *demo) snapshot(ctx context.Context) string {
	var b strings.Builder
	fmt.Fprintf(&b, "quorumguard demo\n\nMACHINE                     PHASE        ZONE         HOOK  ETCDMEMBER\n")
	for _, m := range d.masters(ctx) {
		fmt.Fprintf(&b, "%-27s %-12s %-12s %-5v %s\n", m.name, m.phase, m.zone, m.hook, m.reason)
	}
	fmt.Fprintf(&b, "\nMEMBER                      ROLE     INDEX    LEADER\n")
	for _, m := range d.members(ctx) {
		role := "voter"
		if m.learner {
			role = "learner"
		}
		fmt.Fprintf(&b, "%-27s %-8s %-8d %v\n", m.name, role, m.index, m.leader)
	}
	if d.writer != nil {
		fmt.Fprintf(&b, "\nwriter: %d acknowledged, longest pause %s\n", d.writer.Acked(), d.writer.LongestPause().Round(time.Millisecond))
		fmt.Fprintf(&b, "write latency over the last 10 s: %s\n", d.writer.Latencies(time.Now().Add(-10*time.Second), time.Time{}))
	}
	if l, err := d.leader(ctx); err == nil {
		fmt.Fprintf(&b, "leader replica: %s\n", l)
	}
	co := &configv1.ClusterOperator{}
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Name: "quorumguard"}, co); err == nil {
		for _, c := range co.Status.Conditions {
			fmt.Fprintf(&b, "clusteroperator/quorumguard %s=%s (%s)\n", c.Type, c.Status, c.Reason)
		}
	}
	return b.String()
}

func awsDomain(zone string) machinev1.AWSFailureDomain {
	return machinev1.AWSFailureDomain{
		Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: zone},
		Subnet:    &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType, ID: ptr.To("subnet-" + zone)},
	}
}

func cpmsFor(zones []string) *machinev1.ControlPlaneMachineSet {
	var domains []machinev1.AWSFailureDomain
	for _, z := range zones {
		domains = append(domains, awsDomain(z))
	}
	labels := map[string]string{framework.RoleLabel: "master", framework.TypeLabel: "master", framework.ClusterLabel: "cluster"}
	return &machinev1.ControlPlaneMachineSet{
		ObjectMeta: metav1ObjectMeta("cluster", framework.MachineNamespace),
		Spec: machinev1.ControlPlaneMachineSetSpec{
			Replicas: ptr.To[int32](3),
			State:    machinev1.ControlPlaneMachineSetStateActive,
			Strategy: machinev1.ControlPlaneMachineSetStrategy{Type: machinev1.RollingUpdate},
			Selector: metav1LabelSelector(labels),
			Template: machinev1.ControlPlaneMachineSetTemplate{
				MachineType: machinev1.OpenShiftMachineV1Beta1MachineType,
				OpenShiftMachineV1Beta1Machine: &machinev1.OpenShiftMachineV1Beta1MachineTemplate{
					FailureDomains: &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &domains},
					ObjectMeta:     machinev1.ControlPlaneMachineSetTemplateObjectMeta{Labels: labels},
					Spec:           machinev1beta1.MachineSpec{ProviderSpec: machinev1beta1.ProviderSpec{Value: framework.AWSProviderSpec("us-east-1a", "subnet-us-east-1a")}},
				},
			},
		},
	}
}

func metav1ObjectMeta(name, ns string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns}
}

func metav1LabelSelector(l map[string]string) metav1.LabelSelector {
	return metav1.LabelSelector{MatchLabels: l}
}
