package operatorstatus

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// series flattens a registry into "name{label=value,...}" -> value; histograms give _count
// and _sum.
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			key := mf.GetName()
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
				out[key+"_sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func TestMetricsFollowAReplacement(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	old := machine("m-0", 0, t0, true)
	deleting := *old.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}
	voters := []quorum.Member{
		{ID: 1, Name: "m-0", Started: true, Healthy: true, Machine: "m-0"},
		{ID: 2, Name: "m-1", Started: true, Healthy: true, Machine: "m-1", Leader: true},
		{ID: 3, Name: "m-2", Started: true, Healthy: true, Machine: "m-2"},
	}
	learner := quorum.Member{ID: 4, Name: "m-3", Started: true, Healthy: true, Learner: true, Machine: "m-3", Progress: 0.4}
	type step struct {
		name  string
		in    MetricsInput
		check map[string]float64
		gone  []string
	}
	steps := []step{
		{
			name: "idle",
			in: MetricsInput{Time: t0, Observed: true, Hook: hook, Machines: []machinev1beta1.Machine{old},
				Members: voters, Decision: quorum.Decision{Action: quorum.Action{Kind: quorum.None}, FaultTolerance: 1}},
			check: map[string]float64{
				MetricVotingMembers: 3, MetricLearners: 0, MetricHealthyMembers: 3, MetricFaultTolerance: 1, MetricEtcdObserved: 1,
				MetricReplacements: 0, MetricReplacementDuration + "_count": 0, MetricFencingRefusals: 0,
			},
		},
		{
			name: "learner catching up while the old Machine holds the hook",
			in: MetricsInput{Time: t0.Add(20 * time.Second), Observed: true, Hook: hook, Machines: []machinev1beta1.Machine{deleting},
				Members: append(voters[:3:3], learner), Decision: quorum.Decision{Action: quorum.Action{Kind: quorum.Promote}, FaultTolerance: 1}},
			check: map[string]float64{
				MetricVotingMembers: 3, MetricLearners: 1,
				MetricLearnerCatchUp + "{machine=m-3,member=4}": 0.4,
				MetricHookHeldSeconds + "{machine=m-0}":         20,
			},
		},
		{
			name: "etcd out of reach keeps the last counts",
			in: MetricsInput{Time: t0.Add(25 * time.Second), Observed: false, Err: errors.New("unreachable"), Hook: hook,
				Machines: []machinev1beta1.Machine{deleting}},
			check: map[string]float64{
				MetricEtcdObserved: 0, MetricVotingMembers: 3, MetricLearners: 1,
				MetricHookHeldSeconds + "{machine=m-0}": 25,
			},
		},
		{
			name: "a refused action is a fencing refusal",
			in: MetricsInput{Time: t0.Add(26 * time.Second), Observed: true, Hook: hook, Machines: []machinev1beta1.Machine{deleting},
				Members: voters, Err: errors.New("fenced"), Fenced: true,
				Decision: quorum.Decision{Action: quorum.Action{Kind: quorum.RemoveMember, Machine: "m-0"}, FaultTolerance: 1}},
			check: map[string]float64{MetricFencingRefusals: 1, MetricLearners: 0},
			gone:  []string{MetricLearnerCatchUp + "{machine=m-3,member=4}"},
		},
		{
			name: "a failed release is not a replacement",
			in: MetricsInput{Time: t0.Add(29 * time.Second), Observed: true, Hook: hook, Machines: []machinev1beta1.Machine{deleting},
				Members: voters[1:], Err: errors.New("conflict"),
				Decision: quorum.Decision{Action: quorum.Action{Kind: quorum.ReleaseHook, Machine: "m-0"}, FaultTolerance: 1}},
			check: map[string]float64{MetricReplacements: 0, MetricVotingMembers: 2},
		},
		{
			name: "the released hook counts one replacement with its duration",
			in: MetricsInput{Time: t0.Add(30 * time.Second), Observed: true, Hook: hook, Machines: []machinev1beta1.Machine{deleting},
				Members: voters[1:], Decision: quorum.Decision{Action: quorum.Action{Kind: quorum.ReleaseHook, Machine: "m-0"}, FaultTolerance: 1}},
			check: map[string]float64{MetricReplacements: 1, MetricReplacementDuration + "_count": 1, MetricReplacementDuration + "_sum": 30},
			gone:  []string{MetricHookHeldSeconds + "{machine=m-0}"},
		},
	}
	for _, s := range steps {
		m.Update(s.in)
		got := series(t, reg)
		for k, want := range s.check {
			if v, ok := got[k]; !ok || v != want {
				t.Errorf("%s: %s = %v (present %v), want %v", s.name, k, v, ok, want)
			}
		}
		for _, k := range s.gone {
			if _, ok := got[k]; ok {
				t.Errorf("%s: %s is still reported", s.name, k)
			}
		}
	}
	m.SetLeader(true)
	if got := series(t, reg)[MetricLeader]; got != 1 {
		t.Errorf("%s = %v after SetLeader(true)", MetricLeader, got)
	}
}

func TestNewMetricsTwiceSharesTheSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("a second set on the same registry: %v", err)
	}
	a.SetLeader(false)
	b.SetLeader(true)
	if got := series(t, reg)[MetricLeader]; got != 1 {
		t.Errorf("the second set does not write the registered series: %v", got)
	}
	for name := range series(t, reg) {
		if !strings.HasPrefix(name, "quorumguard_") {
			t.Errorf("series %s lacks the quorumguard_ prefix", name)
		}
	}
	if n := len(series(t, reg)); n == 0 {
		t.Error("no series registered")
	}
}

func TestMetricsEtcdAlarms(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	members := []quorum.Member{{ID: 0xa, Machine: "m-0", Alarms: []string{quorum.AlarmCorrupt}}, {ID: 0xb, Machine: "m-1"}}
	key := `quorumguard_etcd_alarms{alarm=CORRUPT,machine=m-0,member=a}`
	m.Update(MetricsInput{Time: t0, Observed: true, Members: members})
	if got := series(t, reg)[key]; got != 1 {
		t.Fatalf("%s = %v, want 1 while the alarm is active", key, got)
	}
	m.Update(MetricsInput{Time: t0, Observed: true, Members: []quorum.Member{{ID: 0xa, Machine: "m-0"}},
		Decision: quorum.Decision{AlarmsUnread: "deadline exceeded"}})
	if got := series(t, reg)[key]; got != 1 {
		t.Fatalf("%s = %v after a pass that could not read the alarms, want it kept", key, got)
	}
	m.Update(MetricsInput{Time: t0, Observed: true, Members: []quorum.Member{{ID: 0xa, Machine: "m-0"}}})
	if _, ok := series(t, reg)[key]; ok {
		t.Fatalf("%s still exported once the alarm is disarmed", key)
	}
}
