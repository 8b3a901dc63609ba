package framework_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/test/framework"
)

var cp *framework.ControlPlane

func TestMain(m *testing.M) { framework.Main(m, framework.ControlPlaneOptions{}, &cp) }

var hook = machinev1beta1.LifecycleHook{Name: "EtcdQuorumOperator", Owner: "clusteroperator/etcd"}

func startCluster(t *testing.T) *framework.Cluster {
	t.Helper()
	c, err := framework.StartCluster(t.Context(), cp, framework.ClusterOptions{Dir: t.TempDir(), Hook: &hook})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	return c
}

func etcdClient(t *testing.T, c *framework.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestClusterLifecycle(t *testing.T) {
	c := startCluster(t)
	cli := etcdClient(t, c)
	ctx := t.Context()

	t.Run("three machines boot a quorate TLS cluster", func(t *testing.T) {
		list, err := cli.MemberList(ctx)
		must(t, err)
		if len(list.Members) != 3 {
			t.Fatalf("want 3 members, got %d", len(list.Members))
		}
		for _, m := range list.Members {
			if m.IsLearner || !strings.HasPrefix(m.PeerURLs[0], "https://") {
				t.Errorf("member %s: learner=%v peer URLs %v; want a TLS voting member", m.Name, m.IsLearner, m.PeerURLs)
			}
		}
		for i := range 3 {
			m, err := c.Machine(ctx, fmt.Sprintf("cluster-master-%d", i))
			must(t, err)
			if framework.Phase(m) != framework.PhaseRunning || m.Status.NodeRef == nil || framework.InternalIP(m) == nil {
				t.Errorf("machine %s: phase %q nodeRef %v ip %v; want Running with a node and an address", m.Name, framework.Phase(m), m.Status.NodeRef, framework.InternalIP(m))
			}
			var node corev1.Node
			must(t, c.Client.Get(ctx, client.ObjectKey{Name: m.Status.NodeRef.Name}, &node))
		}
		_, err = cli.Put(ctx, "k", "v")
		must(t, err)
	})

	t.Run("a fourth machine joins only after it is added as a learner, then can be promoted", func(t *testing.T) {
		m := c.NewMaster("cluster-master-3", framework.AWSProviderSpec("us-east-1b", "subnet-b"))
		must(t, c.Client.Create(ctx, m))
		must(t, framework.WaitFor(ctx, 30*time.Second, "machine Running", func() (bool, error) {
			got, err := c.Machine(ctx, m.Name)
			return err == nil && framework.Phase(got) == framework.PhaseRunning, err
		}))
		time.Sleep(300 * time.Millisecond)
		if c.Agent.Member(m.Name) != nil {
			t.Fatal("the agent started a member before anyone added it")
		}
		got, err := c.Machine(ctx, m.Name)
		must(t, err)
		peer := "https://" + framework.InternalIP(got).String() + ":2380"
		// etcd refuses a reconfiguration until every voting member has been connected for
		// five seconds (strict reconfig check), so a fresh cluster needs retries.
		var added *clientv3.MemberAddResponse
		must(t, framework.WaitFor(ctx, 30*time.Second, "learner add", func() (bool, error) {
			// Each attempt is bounded: a proposal dropped in a leader change is never answered.
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var err error
			added, err = cli.MemberAddAsLearner(actx, []string{peer})
			return err == nil, err
		}))
		must(t, framework.WaitFor(ctx, 30*time.Second, "learner to start and be promoted", func() (bool, error) {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := cli.MemberPromote(actx, added.Member.ID)
			return err == nil, nil
		}))
		list, err := cli.MemberList(ctx)
		must(t, err)
		for _, mem := range list.Members {
			if mem.ID == added.Member.ID && (mem.IsLearner || mem.Name != m.Name) {
				t.Fatalf("promoted member: name %q learner %v", mem.Name, mem.IsLearner)
			}
		}
	})

	t.Run("a deleting machine with a preDrain hook waits until the hook goes, then its member stops", func(t *testing.T) {
		name := "cluster-master-0"
		mem := c.Agent.Member(name)
		must(t, c.DeleteMachine(ctx, name))
		must(t, framework.WaitFor(ctx, 20*time.Second, "Drainable=False naming the hook", func() (bool, error) {
			m, err := c.Machine(ctx, name)
			if err != nil {
				return false, err
			}
			cond := framework.Condition(m, framework.ConditionDrainable)
			return framework.Phase(m) == framework.PhaseDeleting && cond != nil && cond.Status == corev1.ConditionFalse &&
				strings.Contains(cond.Message, hook.Name), nil
		}))
		time.Sleep(500 * time.Millisecond)
		m, err := c.Machine(ctx, name)
		must(t, err)
		if framework.Phase(m) != framework.PhaseDeleting || !mem.Running() {
			t.Fatalf("held machine moved on: phase %q, member running %v", framework.Phase(m), mem.Running())
		}
		must(t, c.RemoveHooks(ctx, name, hook.Name))
		must(t, framework.WaitFor(ctx, 20*time.Second, "machine to disappear", func() (bool, error) {
			_, err := c.Machine(ctx, name)
			return apierrors.IsNotFound(err), nil
		}))
		if mem.Running() {
			t.Fatal("the member of a terminated machine still runs")
		}
		var node corev1.Node
		if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, &node); !apierrors.IsNotFound(err) {
			t.Fatalf("node of a terminated machine: %v", err)
		}
	})
}

func TestFaultsAreVisible(t *testing.T) {
	c := startCluster(t)
	cli := etcdClient(t, c)
	ctx := t.Context()
	status := func(endpoint string) (*clientv3.StatusResponse, error) {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return cli.Status(sctx, endpoint)
	}

	t.Run("a killed member is reported unhealthy", func(t *testing.T) {
		mem := c.Agent.Member("cluster-master-2")
		mem.Kill()
		if _, err := status(mem.ClientURL()); err == nil {
			t.Fatal("status of a killed member succeeded")
		}
		must(t, mem.Restart())
		must(t, mem.WaitReady(ctx))
	})

	t.Run("a partitioned member falls behind", func(t *testing.T) {
		mem := c.Agent.Member("cluster-master-1")
		mem.Partition()
		defer mem.Heal()
		for ok, tries := 0, 0; ok < 10 && tries < 50; tries++ {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if _, err := cli.Put(pctx, fmt.Sprintf("p%d", tries), "v"); err == nil {
				ok++
			}
			cancel()
		}
		behind, err := status(mem.ClientURL())
		must(t, err)
		ahead, err := status(c.Agent.Member("cluster-master-0").ClientURL())
		must(t, err)
		if behind.RaftIndex >= ahead.RaftIndex {
			t.Fatalf("partitioned member at index %d, the others at %d", behind.RaftIndex, ahead.RaftIndex)
		}
	})
}

func TestWriter(t *testing.T) {
	c := startCluster(t)
	ctx := t.Context()

	t.Run("no lost writes on a healthy cluster", func(t *testing.T) {
		w, err := c.StartWriter(ctx)
		must(t, err)
		time.Sleep(time.Second)
		rep, err := w.Stop(ctx)
		must(t, err)
		if rep.Acked < 10 || len(rep.Lost) != 0 {
			t.Fatalf("writer: %s; want at least 10 acknowledged and none lost", rep)
		}
	})

	// A writer's etcd client left open keeps a gRPC reconnect loop per endpoint running for
	// the rest of the process: three per chaos scenario, once.
	t.Run("Stop closes the client the writer was made with, never a caller's", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			start  func(t *testing.T) *framework.Writer
			closed bool
		}{
			{name: "the cluster's writer", closed: true, start: func(t *testing.T) *framework.Writer {
				w, err := c.StartWriter(ctx)
				must(t, err)
				return w
			}},
			{name: "a writer on the caller's client", start: func(t *testing.T) *framework.Writer {
				return framework.StartWriter(ctx, framework.WriterOptions{Client: etcdClient(t, c), Prefix: "/callers-client/"})
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := tc.start(t)
				must(t, framework.WaitFor(ctx, 10*time.Second, "a write", func() (bool, error) { return w.Acked() > 0, nil }))
				_, err := w.Stop(ctx)
				must(t, err)
				if closed := w.Client().Ctx().Err() != nil; closed != tc.closed {
					t.Fatalf("after Stop the writer's client is closed=%v; want %v", closed, tc.closed)
				}
			})
		}
	})

	t.Run("a loss is reported when acknowledged keys vanish", func(t *testing.T) {
		cli := etcdClient(t, c)
		w := framework.StartWriter(ctx, framework.WriterOptions{Client: cli, Prefix: "/loss-check/"})
		must(t, framework.WaitFor(ctx, 10*time.Second, "some writes", func() (bool, error) { return w.Acked() >= 5, nil }))
		other := etcdClient(t, c)
		_, err := other.Delete(ctx, "/loss-check/00000002")
		must(t, err)
		rep, err := w.Stop(ctx)
		must(t, err)
		if len(rep.Lost) != 1 || rep.Lost[0] != "/loss-check/00000002" {
			t.Fatalf("writer reported lost %v; want exactly the deleted key", rep.Lost)
		}
	})
}

func TestBadInput(t *testing.T) {
	t.Run("a missing tool names the make target", func(t *testing.T) {
		t.Setenv("QUORUMGUARD_BIN_DIR", t.TempDir())
		err := framework.RequireBinaries("kube-apiserver")
		if err == nil || !strings.Contains(err.Error(), "make tools") || !strings.Contains(err.Error(), "kube-apiserver") {
			t.Fatalf("want an error naming kube-apiserver and `make tools`, got %v", err)
		}
		if _, err := framework.StartControlPlane(framework.ControlPlaneOptions{}); err == nil || !strings.Contains(err.Error(), "make tools") {
			t.Fatalf("StartControlPlane with no binaries: %v", err)
		}
	})

	t.Run("a machine without a role label gets no etcd member", func(t *testing.T) {
		c := startCluster(t)
		ctx := t.Context()
		m := c.NewMaster("worker-like-0", framework.AWSProviderSpec("us-east-1a", "subnet-a"))
		delete(m.Labels, framework.RoleLabel)
		must(t, c.Client.Create(ctx, m))
		must(t, framework.WaitFor(ctx, 30*time.Second, "agent to see the running machine", func() (bool, error) {
			return c.Agent.Ignored(m.Name), nil
		}))
		if c.Agent.Member(m.Name) != nil {
			t.Fatal("a machine without the master role got an etcd member")
		}
	})
}

// TestAPIServerRestart: while the apiserver is down requests fail; afterwards the same client
// and credentials work again and what was stored before is still there.
func TestAPIServerRestart(t *testing.T) {
	ctx := t.Context()
	cm := &corev1.ConfigMap{}
	cm.Name, cm.Namespace, cm.Data = "restart-probe", framework.MachineNamespace, map[string]string{"k": "v"}
	must(t, cp.Client.Create(ctx, cm))
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), cm) })

	downSeen := make(chan error, 1)
	go func() {
		// Poll until a request fails: the apiserver has gone down.
		for {
			err := cp.Client.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{})
			if err != nil || ctx.Err() != nil {
				downSeen <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	must(t, cp.RestartAPIServer(2*time.Second))
	select {
	case err := <-downSeen:
		if err == nil {
			t.Fatal("no request failed while the apiserver was down")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no request failed while the apiserver was down")
	}
	got := &corev1.ConfigMap{}
	must(t, framework.WaitFor(ctx, 30*time.Second, "the apiserver to answer again", func() (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKeyFromObject(cm), got)
		return err == nil, err
	}))
	if got.Data["k"] != "v" {
		t.Fatalf("ConfigMap after the restart has data %v, want k=v", got.Data)
	}
}
