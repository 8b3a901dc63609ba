package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

const (
	protectedConfigMap = "quorumguard-etcd-endpoints"
	protectedConsumer  = "kube-apiserver"
)

// startProtected starts a cluster whose apiserver lives on the etcd quorumguard protects,
// the stand-in apiserver operator following the published endpoints, and a controller that
// waits for it before removing a member.
func startProtected(t *testing.T) (*framework.Cluster, *framework.APIServerOperator) {
	t.Helper()
	c := newProtected(t)
	op := c.StartAPIServerOperator(framework.MachineNamespace, protectedConfigMap, protectedConsumer)
	t.Cleanup(op.Stop)
	o := e2e.ControllerOptions(c)
	o.EndpointsConfigMap, o.EndpointConsumers = protectedConfigMap, []string{protectedConsumer}
	runProtectedController(t, c, o)
	return c, op
}

// newProtected starts a cluster whose apiserver stores its data in the members quorumguard
// protects, stopped when the test ends.
func newProtected(t *testing.T) *framework.Cluster {
	t.Helper()
	c, err := framework.StartProtected(t.Context(), framework.ControlPlaneOptions{}, framework.ClusterOptions{Dir: t.TempDir(), ProvisionDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	return c
}

// runProtectedController starts the controller, stopped when the test ends, and waits until
// every master carries the hook.
func runProtectedController(t *testing.T, c *framework.Cluster, o app.Options) {
	t.Helper()
	rc, err := e2e.StartController(t.Context(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Stop() })
	waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
}

// replaceWhenServing creates repl and deletes old, retried while the API is away (a
// restart onto new etcd servers).
func replaceWhenServing(t *testing.T, c *framework.Cluster, old, repl string) {
	t.Helper()
	ctx := t.Context()
	if err := framework.WaitFor(ctx, time.Minute, "the API to serve before "+old+" is deleted", func() (bool, error) {
		if err := e2e.CreateReplacement(ctx, c, repl); err != nil && !isAlreadyExists(err) {
			return false, err
		}
		return c.DeleteMachine(ctx, old) == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestProtectedStoreReplaceAllThreeInTurn replaces every original master, one after another,
// on a cluster whose apiserver stores its data in the members being replaced, under
// OpenShift's contract (etcd-endpoints and the stand-in kube-apiserver operator's revisions).
// The API rides out each restart onto the new revision, no acknowledged write is lost, no
// member is removed while a node's revision dials it, and at the end the apiserver runs on
// the three new members alone.
func TestProtectedStoreReplaceAllThreeInTurn(t *testing.T) {
	c, op := startOpenShiftProtected(t, nil)
	ctx := t.Context()
	g, err := e2e.StartGuards(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		old, repl := fmt.Sprintf("cluster-master-%d", i), fmt.Sprintf("cluster-new-%d", i)
		replaceWhenServing(t, c, old, repl)
		if err := e2e.WaitGone(ctx, c, 3*time.Minute, old); err != nil {
			t.Fatalf("%v; rollouts so far %+v", err, op.Rollouts())
		}
	}
	if err := e2e.WaitVoters(ctx, c, time.Minute, "cluster-new-0", "cluster-new-1", "cluster-new-2"); err != nil {
		t.Fatal(err)
	}
	rep, mon, err := g.Check(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("writer: %s; monitor: %s", rep, mon)
	var want []string
	for i := range 3 {
		want = append(want, c.Agent.Member(fmt.Sprintf("cluster-new-%d", i)).ClientURL())
	}
	sort.Strings(want)
	if err := framework.WaitFor(ctx, time.Minute, "the apiserver to run on the new members alone", func() (bool, error) {
		return slices.Equal(c.CP.EtcdServers(), want), nil
	}); err != nil {
		t.Fatalf("%v: --etcd-servers %v, want %v", err, c.CP.EtcdServers(), want)
	}
	var list machinev1beta1.MachineList
	if err := framework.WaitFor(ctx, time.Minute, "the API to serve", func() (bool, error) {
		err := c.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace))
		return err == nil, err
	}); err != nil {
		t.Fatal(err)
	}
	restarts := 0
	for _, r := range op.Rollouts() {
		t.Logf("node %s to revision %d: restarted %v, API away %s", r.Node, r.Revision, r.Restarted, r.Down.Round(time.Millisecond))
		if r.Err != nil {
			t.Errorf("node %s to revision %d failed: %v", r.Node, r.Revision, r.Err)
		}
		if r.Restarted {
			restarts++
		}
	}
	if restarts < 3 {
		t.Errorf("kube-apiserver was restarted %d times for new revisions, want at least 3 (one per replacement): %+v", restarts, op.Rollouts())
	}
	if v := op.Violations(); len(v) > 0 {
		t.Errorf("members removed while a node's kube-apiserver revision dialled them: %v", v)
	}
}

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

// TestProtectedStoreQuorumLoss, under the generic contract (the quorumguard-etcd-endpoints
// ConfigMap and a consumer's digest acknowledgement): two of three members frozen take quorum away, and with it
// the API, as in production. Nothing is changed while it is gone: the member list and every
// hook are as they were once it returns, no acknowledged write is lost, and a replacement
// afterwards completes.
func TestProtectedStoreQuorumLoss(t *testing.T) {
	c, _ := startProtected(t)
	ctx := t.Context()
	w, err := c.StartWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := memberIDs(t, c)
	frozen := []string{"cluster-master-1", "cluster-master-2"}
	for _, n := range frozen {
		c.Agent.Member(n).Freeze()
	}
	apiDown := func() (bool, error) {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var list machinev1beta1.MachineList
		return c.Client.List(lctx, &list, client.InNamespace(framework.MachineNamespace)) != nil, nil
	}
	if err := framework.WaitFor(ctx, 30*time.Second, "the API to fail without etcd quorum", apiDown); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	if down, _ := apiDown(); !down {
		t.Fatal("the API answered a list with two of three etcd members frozen")
	}
	for _, n := range frozen {
		c.Agent.Member(n).Thaw()
	}
	if err := framework.WaitFor(ctx, time.Minute, "the API to return", func() (bool, error) { down, _ := apiDown(); return !down, nil }); err != nil {
		t.Fatal(err)
	}
	if after := memberIDs(t, c); !slices.Equal(before, after) {
		t.Fatalf("membership changed across the quorum loss: %x, then %x", before, after)
	}
	waitHooks(t, c, "cluster-master-0", "cluster-master-1", "cluster-master-2")
	if err := e2e.CreateReplacement(ctx, c, "cluster-new-0"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMachine(ctx, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitGone(ctx, c, 3*time.Minute, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	rep, err := w.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Lost) > 0 || rep.Acked == 0 {
		t.Fatalf("writer: %s", rep)
	}
	t.Logf("writer: %s", rep)
}

func memberIDs(t *testing.T, c *framework.Cluster) []uint64 {
	t.Helper()
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var ids []uint64
	err = framework.WaitFor(t.Context(), 30*time.Second, "the member list", func() (bool, error) {
		lctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		l, err := cli.MemberList(lctx)
		if err != nil {
			return false, err
		}
		ids = ids[:0]
		for _, m := range l.Members {
			ids = append(ids, m.ID)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}
