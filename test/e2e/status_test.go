package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	configv1ac "github.com/openshift/client-go/config/applyconfigurations/config/v1"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/openshift"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// statusCluster starts a three-master cluster and a controller that reports through the
// ClusterOperator coName, and waits until every master is a hooked voting member.
func statusCluster(t *testing.T, coName string, mutate func(*app.Options)) (*framework.Cluster, *e2e.Controller) {
	t.Helper()
	t.Cleanup(func() {
		_ = cp.Client.Delete(context.Background(), &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: coName}})
	})
	return startCluster(t, clusterSpec{
		options: func(o *app.Options) {
			o.ClusterOperator, o.HookHeldThreshold = coName, 30*time.Minute
			if mutate != nil {
				mutate(o)
			}
		},
		adjust: func(a *app.Controller) error { return a.EnableStatus() },
	})
}

// conditions reads the ClusterOperator's conditions by type.
func conditions(ctx context.Context, name string) (map[configv1.ClusterStatusConditionType]configv1.ClusterOperatorStatusCondition, error) {
	co := &configv1.ClusterOperator{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, co); err != nil {
		return nil, err
	}
	out := map[configv1.ClusterStatusConditionType]configv1.ClusterOperatorStatusCondition{}
	for _, c := range co.Status.Conditions {
		out[c.Type] = c
	}
	return out, nil
}

// want is a condition's expected status, a reason it must name and text its message must hold.
type want struct {
	status   configv1.ConditionStatus
	reason   string
	contains string
}

func (w want) match(c configv1.ClusterOperatorStatusCondition) bool {
	return c.Status == w.status && strings.Contains(c.Reason, w.reason) && strings.Contains(c.Message, w.contains)
}

// waitConditions waits until the ClusterOperator's conditions match every want.
func waitConditions(t *testing.T, name string, timeout time.Duration, wants map[configv1.ClusterStatusConditionType]want) map[configv1.ClusterStatusConditionType]configv1.ClusterOperatorStatusCondition {
	t.Helper()
	var last map[configv1.ClusterStatusConditionType]configv1.ClusterOperatorStatusCondition
	err := framework.WaitFor(t.Context(), timeout, fmt.Sprintf("ClusterOperator %s to show %v", name, wants), func() (bool, error) {
		got, err := conditions(t.Context(), name)
		if err != nil {
			return false, err
		}
		last = got
		for typ, w := range wants {
			if !w.match(got[typ]) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v; last seen:\n%s", err, describe(last))
	}
	return last
}

func describe(conds map[configv1.ClusterStatusConditionType]configv1.ClusterOperatorStatusCondition) string {
	var b strings.Builder
	for _, typ := range []configv1.ClusterStatusConditionType{configv1.OperatorAvailable, configv1.OperatorProgressing, configv1.OperatorDegraded, configv1.OperatorUpgradeable} {
		c := conds[typ]
		fmt.Fprintf(&b, "  %s=%s %s: %s\n", typ, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

var healthy = map[configv1.ClusterStatusConditionType]want{
	configv1.OperatorAvailable:   {configv1.ConditionTrue, operatorstatus.ReasonEtcdQuorate, "3 of 3 voting members healthy"},
	configv1.OperatorProgressing: {configv1.ConditionFalse, operatorstatus.ReasonAsExpected, ""},
	configv1.OperatorDegraded:    {configv1.ConditionFalse, operatorstatus.ReasonAsExpected, ""},
	configv1.OperatorUpgradeable: {configv1.ConditionTrue, operatorstatus.ReasonAsExpected, ""},
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpStatus(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestStatusFollowsMemberKill kills one member, then a second, and restarts both, checking
// that Available, Degraded and Upgradeable follow, and that the controller stays alive but
// not ready while etcd cannot answer.
func TestStatusFollowsMemberKill(t *testing.T) {
	co := "etcd-status-kill"
	probes := freeAddr(t)
	c, _ := statusCluster(t, co, func(o *app.Options) { o.ProbeAddr = probes })
	healthz, readyz := "http://"+probes+"/healthz", "http://"+probes+"/readyz"
	waitConditions(t, co, 30*time.Second, healthy)
	waitHTTP(t, readyz, http.StatusOK)

	// Nothing in the API tells the controller that a member died: it finds out at its next
	// idle resync (30 s) and then polls until the member is back.
	start := time.Now()
	c.Agent.Member("cluster-master-1").Kill()
	got := waitConditions(t, co, 60*time.Second, map[configv1.ClusterStatusConditionType]want{
		configv1.OperatorAvailable:   {configv1.ConditionTrue, operatorstatus.ReasonEtcdQuorate, "2 of 3"},
		configv1.OperatorDegraded:    {configv1.ConditionTrue, operatorstatus.ReasonMembersUnhealthy, "cluster-master-1"},
		configv1.OperatorUpgradeable: {configv1.ConditionFalse, operatorstatus.ReasonNoFaultTolerance, ""},
	})
	if took := time.Since(start); took < operatorstatus.DefaultInertia.For {
		t.Errorf("Degraded after %s, sooner than the %s of inertia", took, operatorstatus.DefaultInertia.For)
	}
	t.Logf("one member killed:\n%s", describe(got))

	c.Agent.Member("cluster-master-2").Kill()
	// The surviving member still answers for itself, so the controller can tell lost quorum
	// from an etcd it cannot reach.
	got = waitConditions(t, co, 60*time.Second, map[configv1.ClusterStatusConditionType]want{
		configv1.OperatorAvailable:   {configv1.ConditionFalse, operatorstatus.ReasonNoQuorum, "0 of 3 voting members are healthy"},
		configv1.OperatorDegraded:    {configv1.ConditionTrue, "", ""},
		configv1.OperatorUpgradeable: {configv1.ConditionFalse, operatorstatus.ReasonNoFaultTolerance, ""},
	})
	t.Logf("two members killed:\n%s", describe(got))
	if err := framework.WaitFor(t.Context(), 30*time.Second, "EtcdMember NoQuorum on cluster-master-0", func() (bool, error) {
		m, err := c.Machine(t.Context(), "cluster-master-0")
		cond := framework.Condition(m, masters.ConditionType)
		ok := err == nil && cond != nil && cond.Reason == quorum.ReasonNoQuorum &&
			strings.Contains(cond.Message, "0 of 3 voting members are healthy and 2 are needed, 1 answer on their own")
		return ok, err
	}); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, readyz, http.StatusInternalServerError)
	if code, err := httpStatus(t.Context(), healthz); err != nil || code != http.StatusOK {
		t.Errorf("/healthz = %d (%v) without quorum; the process is alive and must say so", code, err)
	}

	for _, m := range []string{"cluster-master-1", "cluster-master-2"} {
		if err := c.Agent.Member(m).Restart(); err != nil {
			t.Fatal(err)
		}
	}
	got = waitConditions(t, co, 90*time.Second, healthy)
	t.Logf("both restarted:\n%s", describe(got))
	waitHTTP(t, readyz, http.StatusOK)
}

func waitHTTP(t *testing.T, url string, code int) {
	t.Helper()
	var last int
	err := framework.WaitFor(t.Context(), 60*time.Second, fmt.Sprintf("%s to answer %d", url, code), func() (bool, error) {
		got, err := httpStatus(t.Context(), url)
		last = got
		return err == nil && got == code, nil
	})
	if err != nil {
		t.Fatalf("%v (last %d)", err, last)
	}
}

// TestStatusMachineHealthCheck: a MachineHealthCheck over the control-plane Machines with
// maxUnhealthy 3, or none, is flagged by name; one with 1 is accepted.
func TestStatusMachineHealthCheck(t *testing.T) {
	co := "etcd-status-mhc"
	statusCluster(t, co, nil)
	waitConditions(t, co, 30*time.Second, healthy)
	selector := metav1.LabelSelector{MatchLabels: map[string]string{masters.RoleLabel: "master"}}
	cases := []struct {
		name         string
		maxUnhealthy *intstr.IntOrString
		safe         bool
	}{
		{"masters-max-3", ptrTo(intstr.FromInt32(3)), false},
		{"masters-no-max", nil, false},
		{"masters-67-percent", ptrTo(intstr.FromString("67%")), false},
		{"masters-max-1", ptrTo(intstr.FromInt32(1)), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mhc := &machinev1beta1.MachineHealthCheck{
				ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: framework.MachineNamespace},
				Spec:       machinev1beta1.MachineHealthCheckSpec{Selector: selector, MaxUnhealthy: tc.maxUnhealthy},
			}
			if err := cp.Client.Create(t.Context(), mhc); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cp.Client.Delete(context.Background(), mhc) }()
			if tc.safe {
				// Accepted: once it is seen (it becomes a related object), the status is healthy.
				related(t, co, tc.name)
				waitConditions(t, co, 30*time.Second, healthy)
				return
			}
			waitConditions(t, co, 30*time.Second, map[configv1.ClusterStatusConditionType]want{
				configv1.OperatorAvailable:   {configv1.ConditionTrue, operatorstatus.ReasonEtcdQuorate, ""},
				configv1.OperatorDegraded:    {configv1.ConditionTrue, operatorstatus.ReasonUnsafeMachineHealthCheck, "MachineHealthCheck " + tc.name + " "},
				configv1.OperatorUpgradeable: {configv1.ConditionFalse, operatorstatus.ReasonUnsafeMachineHealthCheck, tc.name},
			})
			related(t, co, tc.name)
			if err := cp.Client.Delete(t.Context(), mhc); err != nil {
				t.Fatal(err)
			}
			waitConditions(t, co, 30*time.Second, healthy)
		})
	}
}

// related waits until the ClusterOperator lists the MachineHealthCheck among its related objects.
func related(t *testing.T, co, mhc string) {
	t.Helper()
	want := configv1.ObjectReference{Group: "machine.openshift.io", Resource: "machinehealthchecks", Namespace: framework.MachineNamespace, Name: mhc}
	err := framework.WaitFor(t.Context(), 30*time.Second, fmt.Sprintf("%+v among the related objects", want), func() (bool, error) {
		obj := &configv1.ClusterOperator{}
		if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: co}, obj); err != nil {
			return false, err
		}
		return slices.Contains(obj.Status.RelatedObjects, want), nil
	})
	if err != nil {
		t.Error(err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// metricsSnapshot scrapes a metrics endpoint into "name{label=value,...}" -> value, with
// histograms as _count and _sum.
func metricsSnapshot(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "quorumguard_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
				out[key+"_sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out, nil
}

// TestMetricsDuringReplacement scrapes the metrics endpoint throughout a replacement and
// checks the documented series, and that the ClusterOperator's Progressing names the
// Machine being replaced.
func TestMetricsDuringReplacement(t *testing.T) {
	co := "etcd-status-metrics"
	addr := freeAddr(t)
	c, _ := statusCluster(t, co, func(o *app.Options) { o.MetricsAddr = addr })
	url := "http://" + addr + "/metrics"
	waitConditions(t, co, 30*time.Second, healthy)
	settle(t, c)
	before, err := metricsSnapshot(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{operatorstatus.MetricVotingMembers, operatorstatus.MetricLearners, operatorstatus.MetricHealthyMembers,
		operatorstatus.MetricFaultTolerance, operatorstatus.MetricReplacements, operatorstatus.MetricReplacementDuration + "_count",
		operatorstatus.MetricFencingRefusals, operatorstatus.MetricLeader, operatorstatus.MetricEtcdObserved} {
		if _, ok := before[name]; !ok {
			t.Errorf("series %s is not exported", name)
		}
	}
	if before[operatorstatus.MetricVotingMembers] != 3 || before[operatorstatus.MetricHealthyMembers] != 3 ||
		before[operatorstatus.MetricFaultTolerance] != 1 || before[operatorstatus.MetricLeader] != 1 || before[operatorstatus.MetricLearners] != 0 {
		t.Errorf("idle series: %v", before)
	}

	type seen struct {
		sync.Mutex
		maxLearners, maxHeld, maxCatchUp float64
		catchUpSeries, progressing       string
		scrapeErr                        error
	}
	var s seen
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			got, err := metricsSnapshot(ctx, url)
			s.Lock()
			if err != nil && ctx.Err() == nil {
				s.scrapeErr = err
			}
			s.maxLearners = max(s.maxLearners, got[operatorstatus.MetricLearners])
			s.maxHeld = max(s.maxHeld, got[operatorstatus.MetricHookHeldSeconds+"{machine=cluster-master-0}"])
			for k, v := range got {
				if strings.HasPrefix(k, operatorstatus.MetricLearnerCatchUp+"{") && strings.Contains(k, "machine=cluster-new-0") {
					s.catchUpSeries, s.maxCatchUp = k, max(s.maxCatchUp, v)
				}
			}
			if conds, err := conditions(ctx, co); err == nil && s.progressing == "" {
				if p := conds[configv1.OperatorProgressing]; p.Status == configv1.ConditionTrue && strings.Contains(p.Message, "cluster-master-0") {
					s.progressing = p.Message
				}
			}
			s.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	res := replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-0"}, Replacements: []string{"cluster-new-0"}, MinVoters: 3})
	stop()
	<-done

	s.Lock()
	defer s.Unlock()
	if s.scrapeErr != nil {
		t.Errorf("a scrape failed during the replacement: %v", s.scrapeErr)
	}
	if s.maxLearners != 1 || s.catchUpSeries == "" || s.maxCatchUp <= 0 || s.maxCatchUp > 1 {
		t.Errorf("during the replacement: %s peaked at %v, catch-up %s peaked at %v; want one learner with a ratio in (0,1]",
			operatorstatus.MetricLearners, s.maxLearners, s.catchUpSeries, s.maxCatchUp)
	}
	if s.maxHeld <= 0 || s.maxHeld > res.Took.Seconds()+1 {
		t.Errorf("%s for cluster-master-0 peaked at %v, want in (0, %v]", operatorstatus.MetricHookHeldSeconds, s.maxHeld, res.Took.Seconds()+1)
	}
	if s.progressing == "" {
		t.Error("Progressing never named cluster-master-0 during its replacement")
	} else {
		t.Logf("Progressing during the replacement: %s", s.progressing)
	}

	var after map[string]float64
	err = framework.WaitFor(t.Context(), 15*time.Second, "series to settle after the replacement", func() (bool, error) {
		after, err = metricsSnapshot(t.Context(), url)
		return err == nil && after[operatorstatus.MetricLearners] == 0 && after[operatorstatus.MetricVotingMembers] == 3 &&
			after[operatorstatus.MetricHealthyMembers] == 3 && after[operatorstatus.MetricFaultTolerance] == 1, err
	})
	if err != nil {
		t.Errorf("%v: %v", err, after)
	}
	delta := func(name string) float64 { return after[name] - before[name] }
	if d := delta(operatorstatus.MetricReplacements); d != 1 {
		t.Errorf("%s grew by %v, want 1", operatorstatus.MetricReplacements, d)
	}
	if d := delta(operatorstatus.MetricReplacementDuration + "_count"); d != 1 {
		t.Errorf("%s_count grew by %v, want 1", operatorstatus.MetricReplacementDuration, d)
	}
	if d := delta(operatorstatus.MetricReplacementDuration + "_sum"); d <= 0 || d > res.Took.Seconds()+1 {
		t.Errorf("the replacement took %v s by the histogram, %s by the test", d, res.Took)
	}
	if d := delta(operatorstatus.MetricFencingRefusals); d != 0 {
		t.Errorf("%s grew by %v with one controller", operatorstatus.MetricFencingRefusals, d)
	}
	for k := range after {
		if strings.HasPrefix(k, operatorstatus.MetricHookHeldSeconds+"{") || strings.HasPrefix(k, operatorstatus.MetricLearnerCatchUp+"{") {
			t.Errorf("%s is still exported after the replacement", k)
		}
	}
	waitConditions(t, co, 30*time.Second, healthy)
}

// manifestObjects reads every object in manifests/.
func manifestObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	ms, err := framework.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*unstructured.Unstructured, len(ms))
	for i, m := range ms {
		out[i] = m.Obj
	}
	return out
}

// apply creates obj, or updates it when it exists, with strict server-side field validation.
func apply(ctx context.Context, cl client.Client, obj *unstructured.Unstructured, opts ...client.CreateOption) error {
	obj = obj.DeepCopy()
	err := cl.Create(ctx, obj, append([]client.CreateOption{client.FieldValidation("Strict")}, opts...)...)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(obj.GroupVersionKind())
	if err := cl.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
		return err
	}
	obj.SetResourceVersion(cur.GetResourceVersion())
	var uopts []client.UpdateOption
	for _, o := range opts {
		if o == client.DryRunAll {
			uopts = append(uopts, client.DryRunAll)
		}
	}
	return cl.Update(ctx, obj, append([]client.UpdateOption{client.FieldValidation("Strict")}, uopts...)...)
}

func manifestNamespace(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			return o.GetName()
		}
	}
	t.Fatal("manifests/ has no Namespace")
	return ""
}

// TestManifestsApply applies every manifest to the apiserver with server-side validation:
// the Namespace for real (the rest need it), everything else as a dry run. Unknown fields
// are errors.
func TestManifestsApply(t *testing.T) {
	ctx := t.Context()
	objs := manifestObjects(t)
	kinds := map[string]bool{}
	for _, o := range objs {
		kinds[o.GetKind()] = true
		if o.GetKind() == "Namespace" {
			if err := apply(ctx, cp.Client, o); err != nil {
				t.Fatalf("Namespace %s: %v", o.GetName(), err)
			}
		}
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"Deployment", "ClusterOperator", "MachineHealthCheck", "ControlPlaneMachineSet"} {
		if !kinds[k] {
			t.Errorf("manifests/ has no %s", k)
		}
	}
	// A ControlPlaneMachineSet left by another test would make the dry run an update of an
	// object whose replicas and selector are immutable; the sample is then validated in a
	// namespace of its own.
	scratch := "quorumguard-dry-run"
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scratch}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, o := range objs {
		t.Run(o.GetKind()+"/"+o.GetName(), func(t *testing.T) {
			if o.GetKind() == "ControlPlaneMachineSet" {
				existing := &unstructured.Unstructured{}
				existing.SetGroupVersionKind(o.GroupVersionKind())
				if cp.Client.Get(ctx, client.ObjectKeyFromObject(o), existing) == nil {
					o = o.DeepCopy()
					o.SetNamespace(scratch)
				}
			}
			if err := apply(ctx, cp.Client, o, client.DryRunAll); err != nil {
				t.Errorf("refused by the apiserver: %v", err)
			}
		})
	}
	// The validation is real: a misspelt field is refused.
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			bad := o.DeepCopy()
			_ = unstructured.SetNestedField(bad.Object, int64(2), "spec", "replicaz")
			if err := apply(ctx, cp.Client, bad, client.DryRunAll); err == nil {
				t.Error("a Deployment with spec.replicaz was accepted; field validation is not strict")
			}
		}
	}
}

// TestRBACIsEnoughAndNoMore runs the controller as the manifests' ServiceAccount, with only
// the manifests' RBAC, under leader-for-life as the Deployment does: it must complete a
// replacement and report through its ClusterOperator, and the apiserver must refuse what
// the role does not grant.
func TestRBACIsEnoughAndNoMore(t *testing.T) {
	ctx := t.Context()
	ns, user, flags := shippedRBAC(t)
	sa, lockID := strings.TrimPrefix(user, "system:serviceaccount:"+ns+":"), flags["leader-election-id"]
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	as, err := client.New(cfg, client.Options{Scheme: framework.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	c := newCluster(t, "")
	// The Pod the controller runs as: it owns the leader-for-life lock.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "quorumguard-rbac", Namespace: ns},
		Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "quorumguard", Image: "quorumguard"}}}}
	if err := cp.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bg := context.Background()
		_ = cp.Client.Delete(bg, pod)
		for _, name := range []string{lockID, lockID + "-epoch"} {
			_ = cp.Client.Delete(bg, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
		}
		_ = cp.Client.Delete(bg, &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: "quorumguard"}})
	})

	o := e2e.ControllerOptions(c)
	o.LeaderElect, o.ElectionNS, o.ElectionID, o.PodName = "for-life", ns, lockID, pod.Name
	o.ClusterOperator, o.HookHeldThreshold = "quorumguard", 30*time.Minute
	// OpenShift's endpoint contract, as shipped: with no kube-apiserver operator here it reads
	// kubeapiservers/cluster each pass and finds none; a refused read would hold the
	// replacement below.
	o.OpenShiftEndpoints = true
	a := runApp(t, cfg, o)
	waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
	if tok := a.Token.Load(); tok == 0 {
		t.Error("the controller acts without a leader-for-life token")
	}
	settle(t, c)
	old, err := c.Machine(ctx, "cluster-master-0")
	if err != nil {
		t.Fatal(err)
	}
	replace(t, e2e.ReplaceInput{Cluster: c, Delete: []string{"cluster-master-0"}, Replacements: []string{"cluster-new-0"}, MinVoters: 3})
	repl, err := c.Machine(ctx, "cluster-new-0")
	if err != nil {
		t.Fatal(err)
	}
	// Events of these very Machines (earlier tests used the same names).
	for uid, reason := range map[types.UID]string{old.UID: "HookReleased", repl.UID: "LearnerAdded"} {
		if !eventually(t, func() bool {
			var list corev1.EventList
			if err := cp.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace)); err != nil {
				t.Fatal(err)
			}
			return slices.ContainsFunc(list.Items, func(e corev1.Event) bool { return e.InvolvedObject.UID == uid && e.Reason == reason })
		}) {
			t.Errorf("no %s Event was recorded for Machine %s", reason, uid)
		}
	}
	waitConditions(t, "quorumguard", 30*time.Second, healthy)

	// What OpenShift's endpoint contract needs is granted: etcd-endpoints created, read and
	// updated, the revisions' ConfigMaps read.
	for _, n := range []string{endpoints.EtcdEndpointsNamespace, endpoints.KubeAPIServerNamespace} {
		if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	ee := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: endpoints.EtcdEndpointsNamespace, Name: endpoints.EtcdEndpointsName}, Data: map[string]string{"a1": "10.0.0.1"}}
	_ = cp.Client.Delete(ctx, ee.DeepCopy())
	if err := as.Create(ctx, ee); err != nil {
		t.Errorf("create etcd-endpoints as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), ee) })
	ee.Data["b2"] = "10.0.0.2"
	if err := as.Update(ctx, ee); err != nil {
		t.Errorf("update etcd-endpoints as %s: %v", user, err)
	}
	if _, err := endpoints.RevisionServers(ctx, as, 1); !apierrors.IsNotFound(err) {
		t.Errorf("read a kube-apiserver revision as %s: %v; want NotFound", user, err)
	}
	asOS, err := openshift.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asOS.Operator.OperatorV1().KubeAPIServers().Get(ctx, endpoints.KubeAPIServerName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("read kubeapiservers/cluster as %s: %v; want NotFound", user, err)
	}
	otherEtcdCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: endpoints.EtcdEndpointsNamespace, Name: "etcd-scripts"}}
	if err := cp.Client.Create(ctx, otherEtcdCM); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), otherEtcdCM) })

	// What the role does not grant is refused.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rbac-probe", Namespace: framework.MachineNamespace}}
	if err := cp.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), secret) })
	other := "quorumguard-rbac-other"
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	worker := &machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{Name: "worker-0", Namespace: other,
		Labels: map[string]string{masters.RoleLabel: "worker"}}}
	if err := cp.Client.Create(ctx, worker); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), worker) })
	otherCO := &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: "etcd-not-ours"}}
	if err := cp.Client.Create(ctx, otherCO); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), otherCO) })
	refused := []struct {
		name string
		do   func() error
	}{
		{"read a Secret in the Machines' namespace", func() error {
			return as.Get(ctx, client.ObjectKeyFromObject(secret), &corev1.Secret{})
		}},
		{"delete a Secret in the Machines' namespace", func() error { return as.Delete(ctx, secret.DeepCopy()) }},
		{"delete a worker Machine in another namespace", func() error { return as.Delete(ctx, worker.DeepCopy()) }},
		{"list Machines in every namespace", func() error { return as.List(ctx, &machinev1beta1.MachineList{}) }},
		{"update a Machine instead of patching it", func() error {
			m := &machinev1beta1.Machine{}
			if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: framework.MachineNamespace, Name: "cluster-master-1"}, m); err != nil {
				return err
			}
			return as.Update(ctx, m)
		}},
		{"write another ClusterOperator's status", func() error {
			co := otherCO.DeepCopy()
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(co), co); err != nil {
				return err
			}
			co.Status.Conditions = []configv1.ClusterOperatorStatusCondition{{Type: configv1.OperatorAvailable, Status: configv1.ConditionFalse, LastTransitionTime: metav1.Now()}}
			return as.Status().Update(ctx, co)
		}},
		{"apply another ClusterOperator's status", func() error {
			ac := configv1ac.ClusterOperator(otherCO.Name).WithStatus(configv1ac.ClusterOperatorStatus().WithConditions(
				configv1ac.ClusterOperatorStatusCondition().WithType(configv1.OperatorAvailable).WithStatus(configv1.ConditionFalse).WithLastTransitionTime(metav1.Now())))
			_, err := asOS.Config.ConfigV1().ClusterOperators().ApplyStatus(ctx, ac, metav1.ApplyOptions{FieldManager: "quorumguard", Force: true})
			return err
		}},
		{"delete a ClusterOperator", func() error { return as.Delete(ctx, otherCO.DeepCopy()) }},
		{"read another ConfigMap in openshift-etcd", func() error {
			return as.Get(ctx, client.ObjectKeyFromObject(otherEtcdCM), &corev1.ConfigMap{})
		}},
		{"delete etcd-endpoints", func() error { return as.Delete(ctx, ee.DeepCopy()) }},
		{"write a kube-apiserver revision", func() error {
			return as.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: endpoints.KubeAPIServerNamespace, Name: "config-99"}})
		}},
		{"delete a ConfigMap other than the lock", func() error {
			return as.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: lockID + "-epoch", Namespace: ns}})
		}},
		{"create a Pod", func() error {
			return as.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "escape", Namespace: ns},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}})
		}},
	}
	for _, r := range refused {
		if err := r.do(); !apierrors.IsForbidden(err) {
			t.Errorf("%s as %s: %v; want Forbidden", r.name, user, err)
		}
	}
	if err := as.Get(ctx, client.ObjectKeyFromObject(worker), &machinev1beta1.Machine{}); !apierrors.IsForbidden(err) {
		t.Errorf("reading a Machine outside the Machines' namespace: %v; want Forbidden", err)
	}
}

// runApp builds the controller from cfg (whose identity its RBAC is tested under) with its
// ClusterOperator status on, runs it, and stops it when the test ends, failing the test if
// it ended with an error or did not stop.
func runApp(t *testing.T, cfg *rest.Config, o app.Options) *app.Controller {
	t.Helper()
	a, err := app.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.EnableStatus(); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("controller: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("controller did not stop")
		}
	})
	return a
}
