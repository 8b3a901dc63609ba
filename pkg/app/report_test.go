package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/framework"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// untrustedEtcd starts a three-member etcd cluster and returns options that reach it with
// a CA that did not sign its certificates, as a fresh install with the wrong CA would, in
// a namespace of their own holding three control-plane Machines whose EtcdMember condition
// still says "Voting, healthy" from before.
func untrustedEtcd(t *testing.T) app.Options {
	t.Helper()
	n, ms, _ := etcdnet.StartTest(t, "a", "b", "c")
	o := options(t)
	_, cert, key := n.ClientFiles()
	// The client certificate is no CA of the members' serving certificates.
	o.EtcdCA, o.EtcdCert, o.EtcdKey = cert, cert, key
	o.EtcdEndpoints = etcdnet.ClientURLs(ms)
	o.Namespace = newNamespace(t)
	o.ElectionNS = o.Namespace
	o.ClusterOperator = "quorumguard-" + o.Namespace
	t.Cleanup(func() {
		_ = cp.Client.Delete(context.Background(), &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: o.ClusterOperator}})
	})
	for i := range 3 {
		m := &machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("master-%d", i), Namespace: o.Namespace,
			Labels: map[string]string{masters.RoleLabel: "master"}}}
		if err := cp.Client.Create(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		m.Status.Conditions = []machinev1beta1.Condition{{Type: masters.ConditionType, Status: corev1.ConditionTrue,
			Reason: quorum.ReasonVoting, Message: fmt.Sprintf("voting member %x, healthy", i+1), LastTransitionTime: metav1.Now()}}
		if err := cp.Client.Status().Update(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// reported says what is still missing from the report of an etcd whose certificate is
// rejected: every Machine EtcdUnreachable, naming the certificate, and the ClusterOperator
// Degraded and not Available for it. "" once all is there.
func reported(t *testing.T, o app.Options) string {
	t.Helper()
	var list machinev1beta1.MachineList
	if err := cp.Client.List(t.Context(), &list, client.InNamespace(o.Namespace)); err != nil {
		return err.Error()
	}
	for i := range list.Items {
		c := framework.Condition(&list.Items[i], masters.ConditionType)
		if c == nil || c.Reason != quorum.ReasonEtcdUnreachable || !strings.Contains(c.Message, "certificate") {
			return fmt.Sprintf("Machine %s's EtcdMember condition is %+v", list.Items[i].Name, c)
		}
	}
	co := &configv1.ClusterOperator{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: o.ClusterOperator}, co); err != nil {
		return "ClusterOperator: " + err.Error()
	}
	want := map[configv1.ClusterStatusConditionType]configv1.ConditionStatus{configv1.OperatorDegraded: configv1.ConditionTrue, configv1.OperatorAvailable: configv1.ConditionFalse}
	for _, c := range co.Status.Conditions {
		if s, ok := want[c.Type]; ok && c.Status == s && strings.Contains(c.Reason, operatorstatus.ReasonEtcdUnreachable) && strings.Contains(c.Message, "certificate") {
			delete(want, c.Type)
		}
	}
	if len(want) > 0 {
		return fmt.Sprintf("ClusterOperator conditions %+v", co.Status.Conditions)
	}
	return ""
}

func waitReported(t *testing.T, o app.Options) {
	t.Helper()
	var missing string
	if err := framework.WaitFor(t.Context(), 90*time.Second, "the rejected certificate on the Machines and the ClusterOperator", func() (bool, error) {
		missing = reported(t, o)
		return missing == "", nil
	}); err != nil {
		t.Fatalf("%v; last seen: %s", err, missing)
	}
}

// TestLeaderReportsWithoutAToken: a fencing token is claimed from etcd, so a leader whose
// etcd client certificate's CA is wrong never gets one. What it observes is a report, not a
// change: the leader still marks every Machine EtcdUnreachable, naming the rejected
// certificate (they said "Voting, healthy" before), and the ClusterOperator Degraded and
// not Available, under every election. Nothing used to be written at all.
func TestLeaderReportsWithoutAToken(t *testing.T) {
	for _, mode := range []string{"for-life", "lease", "none"} {
		t.Run(mode, func(t *testing.T) {
			o := untrustedEtcd(t)
			o.LeaderElect = mode
			if mode == "for-life" {
				o.PodName = "quorumguard-0"
				leaderPod(t, o.ElectionNS, o.PodName)
			}
			r := start(t, o)
			waitReported(t, o)
			if tok := r.c.Token.Load(); tok != 0 {
				t.Fatalf("a token (%d) was claimed from an etcd whose certificate is rejected", tok)
			}
		})
	}
}

// TestStandbyReportsNothing: a leader-for-life standby writes nothing while another Pod
// holds the lock, though it cannot reach etcd either; once the lock is its own, it reports.
func TestStandbyReportsNothing(t *testing.T) {
	o := untrustedEtcd(t)
	o.LeaderElect, o.PodName = "for-life", "quorumguard-1"
	leaderPod(t, o.ElectionNS, "quorumguard-0")
	leaderPod(t, o.ElectionNS, o.PodName)
	holder := &corev1.Pod{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: o.ElectionNS, Name: "quorumguard-0"}, holder); err != nil {
		t.Fatal(err)
	}
	lock := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: o.ElectionID, Namespace: o.ElectionNS,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: holder.Name, UID: holder.UID}}}}
	if err := cp.Client.Create(t.Context(), lock); err != nil {
		t.Fatal(err)
	}
	r := start(t, o)
	// Three passes of the standby's loop, each a chance to write, and the status writer's
	// one-second ticks with them.
	var seen []time.Time
	if err := framework.WaitFor(t.Context(), 30*time.Second, "three passes of the standby", func() (bool, error) {
		if p := r.c.Reconciler.LastPass(); !p.IsZero() && (len(seen) == 0 || p.After(seen[len(seen)-1])) {
			seen = append(seen, p)
		}
		return len(seen) >= 3, nil
	}); err != nil {
		t.Fatal(err)
	}
	var list machinev1beta1.MachineList
	if err := cp.Client.List(t.Context(), &list, client.InNamespace(o.Namespace)); err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		if c := framework.Condition(&list.Items[i], masters.ConditionType); c == nil || c.Reason != quorum.ReasonVoting {
			t.Errorf("the standby wrote Machine %s's EtcdMember condition: %+v", list.Items[i].Name, c)
		}
	}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Name: o.ClusterOperator}, &configv1.ClusterOperator{}); !apierrors.IsNotFound(err) {
		t.Errorf("the standby wrote the ClusterOperator (get: %v)", err)
	}
	// The leader's Pod goes and the garbage collector with it deletes the lock: the standby
	// takes the lock and, still without a token, reports.
	if err := cp.Client.Delete(t.Context(), lock); err != nil {
		t.Fatal(err)
	}
	waitReported(t, o)
}
