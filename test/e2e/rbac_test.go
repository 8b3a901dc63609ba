package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// shippedRBAC applies the manifests' Namespace, ServiceAccount and RBAC, and returns the
// namespace, the ServiceAccount's user name and the Deployment's flags.
func shippedRBAC(t *testing.T) (ns, user string, flags map[string]string) {
	t.Helper()
	ctx := t.Context()
	objs := manifestObjects(t)
	ns = manifestNamespace(t, objs)
	flags = map[string]string{}
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			// The Roles of OpenShift's own namespaces (openshift-etcd,
			// openshift-kube-apiserver) need them, as on a cluster.
			if n := o.GetNamespace(); n != "" {
				if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatal(err)
				}
			}
			if err := apply(ctx, cp.Client, o); err != nil {
				t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
			}
			if o.GetKind() != "Namespace" {
				t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), o) })
			}
		case "Deployment":
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, a := range cs[0].(map[string]any)["args"].([]any) {
				if k, v, ok := strings.Cut(strings.TrimPrefix(a.(string), "--"), "="); ok {
					flags[k] = v
				}
			}
		}
		if o.GetKind() == "ServiceAccount" {
			user = "system:serviceaccount:" + ns + ":" + o.GetName()
		}
	}
	if user == "" || flags["leader-election-id"] == "" || flags["cluster-operator"] == "" {
		t.Fatalf("manifests lack the ServiceAccount (%q), the lock name or the ClusterOperator (%v)", user, flags)
	}
	return ns, user, flags
}

// TestRBACWithMachineManagement runs the configuration that ships, Machine management on,
// as the manifests' ServiceAccount with only the manifests' RBAC, under leader-for-life and
// under a Lease: a rebalance (a failure domain added) and a replacement (a Machine deleted)
// both complete, and the ClusterOperator is written. Then the names the RBAC narrows to are
// shown to be the only ones it grants.
func TestRBACWithMachineManagement(t *testing.T) {
	ns, user, flags := shippedRBAC(t)
	lockID, coName := flags["leader-election-id"], flags["cluster-operator"]
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}

	for _, mode := range []string{"for-life", "lease"} {
		t.Run(mode, func(t *testing.T) {
			ctx := t.Context()
			c := zonedCluster(t, "aba")
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "quorumguard-rbac-" + mode, Namespace: ns},
				Spec: corev1.PodSpec{ServiceAccountName: "quorumguard", Containers: []corev1.Container{{Name: "quorumguard", Image: "quorumguard"}}}}
			if err := cp.Client.Create(ctx, pod); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				bg := context.Background()
				_ = cp.Client.Delete(bg, pod)
				for _, name := range []string{lockID, lockID + "-epoch"} {
					_ = cp.Client.Delete(bg, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
				}
				_ = cp.Client.Delete(bg, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lockID, Namespace: ns}})
				_ = cp.Client.Delete(bg, &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: coName}})
			})

			o := e2e.ControllerOptions(c)
			o.ManageMachines = true
			o.LeaderElect, o.ElectionNS, o.ElectionID, o.PodName = mode, ns, lockID, pod.Name
			o.ClusterOperator, o.HookHeldThreshold = coName, 30*time.Minute
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
			runApp(t, cfg, o)
			waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
			settle(t, c)
			createCPMS(t, c, e2e.CPMSInput{Zones: "ab"})
			t.Cleanup(func() { _ = e2e.DeleteCPMS(context.Background(), c) })

			res := rollout(t, e2e.RolloutInput{Cluster: c, Zones: "abc", Replaced: []int{2},
				Change: func(cpms *machinev1.ControlPlaneMachineSet) { e2e.SetZones(cpms, "abc") }})
			if len(res.Watch.Created) != 1 {
				t.Errorf("rebalance created %v, want one Machine", res.Watch.Created)
			}
			res = rollout(t, e2e.RolloutInput{Cluster: c, Zones: "abc", Replaced: []int{0},
				Act: func(ctx context.Context) error { return c.DeleteMachine(ctx, "cluster-master-0") }})
			if len(res.Watch.Created) != 1 {
				t.Errorf("replacement created %v, want one Machine", res.Watch.Created)
			}
			waitConditions(t, coName, 30*time.Second, healthy)
		})
	}

	// The names the RBAC is narrowed to are the only ones it grants.
	ctx := t.Context()
	as, err := client.New(cfg, client.Options{Scheme: framework.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	otherCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-the-lock", Namespace: ns}}
	otherLease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "not-the-lock", Namespace: ns}}
	otherCO := &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: "etcd"}}
	for _, o := range []client.Object{otherCM, otherLease, otherCO} {
		if err := cp.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), o) })
	}
	for _, r := range []struct {
		name string
		do   func() error
	}{
		{"read a ConfigMap that is not the lock, its epoch or the endpoints", func() error {
			return as.Get(ctx, client.ObjectKeyFromObject(otherCM), &corev1.ConfigMap{})
		}},
		{"read a Lease that is not the lock", func() error {
			return as.Get(ctx, client.ObjectKeyFromObject(otherLease), &coordinationv1.Lease{})
		}},
		{"update a Lease that is not the lock", func() error {
			l := &coordinationv1.Lease{}
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(otherLease), l); err != nil {
				return err
			}
			return as.Update(ctx, l)
		}},
		{"read the etcd operator's ClusterOperator", func() error {
			return as.Get(ctx, client.ObjectKeyFromObject(otherCO), &configv1.ClusterOperator{})
		}},
		{"read an Infrastructure that is not cluster", func() error {
			return as.Get(ctx, client.ObjectKey{Name: "not-cluster"}, &configv1.Infrastructure{})
		}},
	} {
		if err := r.do(); !apierrors.IsForbidden(err) {
			t.Errorf("%s as %s: %v; want Forbidden", r.name, user, err)
		}
	}
}
