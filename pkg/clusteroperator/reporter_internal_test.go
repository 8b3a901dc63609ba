package clusteroperator

import (
	"context"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	configapply "github.com/openshift/client-go/config/applyconfigurations/config/v1"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/coexist"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/openshift"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/framework"
)

// One real kube-apiserver for the package, started by the first test that needs it; each
// test writes a ClusterOperator of its own name.
var (
	cpOnce sync.Once
	cp     *framework.ControlPlane
	cpErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cp != nil {
		_ = cp.Stop()
	}
	os.Exit(code)
}

// apiServer is the package's control plane and typed OpenShift clients on it.
func apiServer(t *testing.T) (*framework.ControlPlane, *openshift.Clients) {
	t.Helper()
	cpOnce.Do(func() { cp, cpErr = framework.StartControlPlane(framework.ControlPlaneOptions{}) })
	if cpErr != nil {
		t.Fatal(cpErr)
	}
	oc, err := openshift.NewClients(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cp, oc
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// coName is a ClusterOperator name of the test's own.
func coName(t *testing.T) string {
	n := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(n) > 60 {
		n = strings.TrimRight(n[:60], "-")
	}
	return n
}

// reporter is a Reporter of the ClusterOperator coName(t), which does not exist yet, on the
// package's kube-apiserver; adjust changes its Config before it is built.
func reporter(t *testing.T, adjust func(*Config)) (*Reporter, *openshift.Clients) {
	t.Helper()
	cp, oc := apiServer(t)
	name := coName(t)
	cos := oc.Config.ConfigV1().ClusterOperators()
	if err := cos.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cos.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	m, err := operatorstatus.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Name: name, Namespace: framework.MachineNamespace, HookHeldThreshold: 30 * time.Minute,
		Related: RelatedObjects(framework.MachineNamespace, "", nil), Client: cp.Client, ClusterOperators: cos,
		Metrics: m, Leads: func() bool { return true }, HoldsLock: func(context.Context) error { return nil }}
	if adjust != nil {
		adjust(&cfg)
	}
	return New(cfg), oc
}

// healthy is a pass over three healthy voters with nothing to do.
func healthy() controlplane.Observation {
	var members []quorum.Member
	for i := range 3 {
		members = append(members, quorum.Member{ID: uint64(i + 1), Started: true, Healthy: true, Leader: i == 0})
	}
	return controlplane.Observation{Time: time.Now(), Members: members, Desired: 3,
		Decision: quorum.Decision{Action: quorum.Action{Kind: quorum.None}, Conditions: map[string]quorum.Condition{}, FaultTolerance: 1, Members: members}}
}

func condition(co *configv1.ClusterOperator, t configv1.ClusterStatusConditionType) *configv1.ClusterOperatorStatusCondition {
	for i := range co.Status.Conditions {
		if co.Status.Conditions[i].Type == t {
			return &co.Status.Conditions[i]
		}
	}
	return nil
}

func get(t *testing.T, r *Reporter) *configv1.ClusterOperator {
	t.Helper()
	co, err := r.cfg.ClusterOperators.Get(t.Context(), r.cfg.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ClusterOperator %s: %v", r.cfg.Name, err)
	}
	return co
}

func sync1(t *testing.T, r *Reporter) {
	t.Helper()
	if err := r.sync(t.Context()); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// appliedStatus says co's status carries quorumguard's server-side apply of the status, and
// no other writer of it.
func appliedStatus(t *testing.T, co *configv1.ClusterOperator) {
	t.Helper()
	if !slices.ContainsFunc(co.ManagedFields, func(mf metav1.ManagedFieldsEntry) bool {
		return mf.Manager == coexist.FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.Subresource == "status"
	}) {
		t.Errorf("no managedFields entry {Manager: %s, Operation: Apply, Subresource: status}: %+v", coexist.FieldManager, co.ManagedFields)
	}
	if w := coexist.StatusWriters(co); len(w) > 0 {
		t.Errorf("StatusWriters = %v of a ClusterOperator only quorumguard writes; want none", w)
	}
}

// TestReporterWritesOnlyWhatItMay: the leader creates the ClusterOperator and applies the
// decided status by server-side apply under quorumguard's field manager, which pkg/coexist
// then counts as no other writer; nothing is written before a pass was observed, by a
// replica that lost the lock, or while another operator writes the ClusterOperator; and
// while another operator manages etcd, Degraded says so.
func TestReporterWritesOnlyWhatItMay(t *testing.T) {
	for _, tc := range []struct {
		name    string
		adjust  func(*Config)
		observe bool
		// written says the ClusterOperator is there after one sync; degraded is then the
		// reason Degraded must give ("" for any).
		written  bool
		degraded string
	}{
		{name: "the leader writes the decided status", observe: true, written: true},
		{name: "nothing observed yet: nothing written", observe: false},
		{name: "a replica that lost the lock writes nothing", observe: true,
			adjust: func(c *Config) { c.HoldsLock = func(context.Context) error { return errors.New("not the leader") } }},
		{name: "another operator writes the ClusterOperator", observe: true,
			adjust: func(c *Config) { c.OwnsClusterOperator = func() bool { return false } }},
		{name: "another operator manages etcd", observe: true, written: true, degraded: operatorstatus.ReasonAnotherOperatorActive,
			adjust: func(c *Config) { c.Hold = func() string { return "the etcd operator is active" } }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := reporter(t, tc.adjust)
			if tc.observe {
				r.Observe(healthy())
			}
			sync1(t, r)
			co, err := r.cfg.ClusterOperators.Get(t.Context(), r.cfg.Name, metav1.GetOptions{})
			switch {
			case !tc.written && !apierrors.IsNotFound(err):
				t.Fatalf("the ClusterOperator was written (get: %v): %+v", err, co.Status)
			case !tc.written:
				return
			case err != nil:
				t.Fatalf("the ClusterOperator was not written: %v", err)
			}
			if len(co.Status.Conditions) == 0 || len(co.Status.RelatedObjects) == 0 || len(co.Status.Versions) == 0 {
				t.Errorf("status %+v; want conditions, related objects and versions", co.Status)
			}
			if d := condition(co, configv1.OperatorDegraded); tc.degraded != "" && (d == nil || d.Reason != tc.degraded || d.Status != configv1.ConditionTrue) {
				t.Errorf("Degraded %+v; want True, reason %s", d, tc.degraded)
			}
			appliedStatus(t, co)
		})
	}
}

// TestReporterWritesOnChange: a status that has not changed is not written again, however
// much time passes; a change is applied with the transition times of the conditions whose
// status held; and a ClusterOperator deleted by someone is created again at the next read.
func TestReporterWritesOnChange(t *testing.T) {
	var held string
	r, _ := reporter(t, func(c *Config) { c.Hold = func() string { return held } })
	now := time.Now()
	r.clock = func() time.Time { return now }
	r.Observe(healthy())
	sync1(t, r)
	first := get(t, r)

	now = now.Add(5 * time.Second)
	r.Observe(healthy())
	sync1(t, r)
	if again := get(t, r); again.ResourceVersion != first.ResourceVersion {
		t.Errorf("an unchanged status was written again: resourceVersion %s, then %s", first.ResourceVersion, again.ResourceVersion)
	}

	now = now.Add(5 * time.Second)
	held = "the etcd operator is active"
	sync1(t, r)
	changed := get(t, r)
	if changed.ResourceVersion == first.ResourceVersion {
		t.Fatal("a changed status was not written")
	}
	d := condition(changed, configv1.OperatorDegraded)
	if d == nil || d.Status != configv1.ConditionTrue || !d.LastTransitionTime.Time.Equal(now.Truncate(time.Second)) {
		t.Errorf("Degraded %+v; want True since %s", d, now.Truncate(time.Second))
	}
	for _, ct := range []configv1.ClusterStatusConditionType{configv1.OperatorAvailable, configv1.OperatorProgressing, configv1.OperatorUpgradeable} {
		was, is := condition(first, ct), condition(changed, ct)
		if was == nil || is == nil || !is.LastTransitionTime.Equal(&was.LastTransitionTime) {
			t.Errorf("%s went from %+v to %+v; want its transition time kept", ct, was, is)
		}
	}
	appliedStatus(t, changed)

	if err := r.cfg.ClusterOperators.Delete(t.Context(), r.cfg.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(statusResync + time.Second)
	sync1(t, r)
	recreated := get(t, r)
	if recreated.UID == first.UID || condition(recreated, configv1.OperatorDegraded) == nil {
		t.Errorf("the deleted ClusterOperator was not created again with its status: %+v", recreated)
	}
	appliedStatus(t, recreated)
}

// TestReporterOwnsOnlyItsFields: another writer's condition type outlives quorumguard's
// writes, and stays that writer's own; an edit of one of quorumguard's conditions by another
// writer is put right at the next read, and that condition is quorumguard's again.
func TestReporterOwnsOnlyItsFields(t *testing.T) {
	const other = "cluster-version-operator"
	const foreign configv1.ClusterStatusConditionType = "EvaluationConditionsDetected"
	r, _ := reporter(t, nil)
	now := time.Now()
	r.clock = func() time.Time { return now }
	r.Observe(healthy())
	sync1(t, r)

	cos := r.cfg.ClusterOperators
	ac := configapply.ClusterOperator(r.cfg.Name).WithStatus(configapply.ClusterOperatorStatus().WithConditions(
		configapply.ClusterOperatorStatusCondition().WithType(foreign).WithStatus(configv1.ConditionFalse).
			WithReason("AsExpected").WithLastTransitionTime(metav1.NewTime(now.Truncate(time.Second)))))
	if _, err := cos.ApplyStatus(t.Context(), ac, metav1.ApplyOptions{FieldManager: other}); err != nil {
		t.Fatalf("the other writer's apply: %v", err)
	}

	// Another writer sets quorumguard's Degraded with an update of the whole status.
	co := get(t, r)
	d := condition(co, configv1.OperatorDegraded)
	d.Status, d.Reason, d.Message = configv1.ConditionTrue, "Edited", "set by someone else"
	if _, err := cos.UpdateStatus(t.Context(), co, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}

	now = now.Add(statusResync + time.Second)
	r.Observe(healthy())
	sync1(t, r)
	co = get(t, r)
	if d := condition(co, configv1.OperatorDegraded); d == nil || d.Status != configv1.ConditionFalse {
		t.Errorf("Degraded %+v; want quorumguard's False back", d)
	}
	if f := condition(co, foreign); f == nil || f.Status != configv1.ConditionFalse || f.Reason != "AsExpected" {
		t.Errorf("%s %+v; want the other writer's condition kept", foreign, f)
	}
	mine, err := configapply.ExtractClusterOperatorStatus(co, coexist.FieldManager)
	if err != nil {
		t.Fatal(err)
	}
	var types []configv1.ClusterStatusConditionType
	for _, c := range mine.Status.Conditions {
		types = append(types, *c.Type)
	}
	slices.Sort(types)
	want := slices.Clone(ownedConditions)
	slices.Sort(want)
	if !slices.Equal(types, want) {
		t.Errorf("quorumguard's applied conditions are %v; want %v", types, want)
	}
	theirs, err := configapply.ExtractClusterOperatorStatus(co, other)
	if err != nil {
		t.Fatal(err)
	}
	if len(theirs.Status.Conditions) != 1 || *theirs.Status.Conditions[0].Type != foreign {
		t.Errorf("%s owns %+v; want its %s condition alone", other, theirs.Status, foreign)
	}
	if w := coexist.StatusWriters(co); !slices.Contains(w, other) {
		t.Errorf("StatusWriters = %v; want %s among them", w, other)
	}
}

// TestStatusApply: only the condition types quorumguard decides are applied, with every
// field of each; versions and related objects whole.
func TestStatusApply(t *testing.T) {
	ltt := metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	st := configv1.ClusterOperatorStatus{
		Conditions: []configv1.ClusterOperatorStatusCondition{
			{Type: configv1.OperatorAvailable, Status: configv1.ConditionTrue, Reason: "AsExpected", Message: "m", LastTransitionTime: ltt},
			{Type: "Foreign", Status: configv1.ConditionTrue, LastTransitionTime: ltt},
			{Type: configv1.OperatorDegraded, Status: configv1.ConditionFalse, LastTransitionTime: ltt},
		},
		Versions:       []configv1.OperandVersion{{Name: "operator", Version: "1.2.3"}},
		RelatedObjects: []configv1.ObjectReference{{Resource: "namespaces", Name: "ns"}, {Group: "g", Resource: "r", Namespace: "n"}},
	}
	ac := StatusApply("x", st)
	if *ac.Name != "x" || *ac.Kind != "ClusterOperator" || *ac.APIVersion != "config.openshift.io/v1" {
		t.Errorf("object %v %v %v", *ac.Name, *ac.Kind, *ac.APIVersion)
	}
	s := ac.Status
	if len(s.Conditions) != 2 || *s.Conditions[0].Type != configv1.OperatorAvailable || *s.Conditions[1].Type != configv1.OperatorDegraded {
		t.Fatalf("conditions %+v; want Available and Degraded", s.Conditions)
	}
	c := s.Conditions[0]
	if *c.Status != configv1.ConditionTrue || *c.Reason != "AsExpected" || *c.Message != "m" || !c.LastTransitionTime.Equal(&ltt) {
		t.Errorf("Available %+v", c)
	}
	if len(s.Versions) != 1 || *s.Versions[0].Name != "operator" || *s.Versions[0].Version != "1.2.3" {
		t.Errorf("versions %+v", s.Versions)
	}
	if len(s.RelatedObjects) != 2 || s.RelatedObjects[0].Namespace != nil || *s.RelatedObjects[0].Name != "ns" ||
		*s.RelatedObjects[1].Group != "g" || *s.RelatedObjects[1].Name != "" || *s.RelatedObjects[1].Namespace != "n" {
		t.Errorf("related objects %+v", s.RelatedObjects)
	}
	if s.Extension != nil {
		t.Errorf("extension %v; want none applied", s.Extension)
	}
}

// TestWarningsReachTheAvailableMessage: a safety wait turned off is said on Available, and
// nothing else changes.
func TestWarningsReachTheAvailableMessage(t *testing.T) {
	in := configv1.ClusterOperatorStatus{Conditions: []configv1.ClusterOperatorStatusCondition{
		{Type: configv1.OperatorAvailable, Status: configv1.ConditionTrue, Message: "etcd is quorate"},
		{Type: configv1.OperatorDegraded, Status: configv1.ConditionFalse, Message: "fine"},
	}}
	got := withWarnings(in, []string{"the kube-apiserver rollout wait is off"})
	if m := got.Conditions[0].Message; m != "etcd is quorate WARNING: the kube-apiserver rollout wait is off" {
		t.Errorf("Available message %q", m)
	}
	if got.Conditions[1].Message != "fine" || in.Conditions[0].Message != "etcd is quorate" {
		t.Errorf("other conditions or the input changed: %+v, %+v", got.Conditions, in.Conditions)
	}
	if out := withWarnings(in, nil); out.Conditions[0].Message != "etcd is quorate" {
		t.Errorf("no warnings: %q", out.Conditions[0].Message)
	}
}
