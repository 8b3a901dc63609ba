package e2e_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// TestRemovalWaitsForEndpointConsumers: with a consumer declared, the old member stays in
// etcd (and the hook on its Machine) until the consumer has acknowledged a published list
// without it; then it goes.
func TestRemovalWaitsForEndpointConsumers(t *testing.T) {
	const cm, consumer = "endpoints-consumer-wait", "kas"
	c, _ := setup(t, func(o *app.Options) { o.EndpointsConfigMap, o.EndpointConsumers = cm, []string{consumer} })
	ctx := t.Context()
	read := func() endpoints.Published {
		p, err := endpoints.Read(ctx, c.Client, framework.MachineNamespace, cm)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := c.Agent.Member("cluster-master-0").ClientURL()
	if err := framework.WaitFor(ctx, 30*time.Second, "the three members' endpoints to be published", func() (bool, error) {
		p, err := endpoints.Read(ctx, c.Client, framework.MachineNamespace, cm)
		return err == nil && len(p.Endpoints) == 3, nil
	}); err != nil {
		t.Fatal(err)
	}
	// The consumer rolls out what is published at the start.
	if err := endpoints.Acknowledge(ctx, c.Client, framework.MachineNamespace, cm, consumer, read().Endpoints); err != nil {
		t.Fatal(err)
	}
	if err := e2e.CreateReplacement(ctx, c, "cluster-new-0"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMachine(ctx, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitFor(ctx, 90*time.Second, "the old member's removal to wait for the consumer", func() (bool, error) {
		m, err := c.Machine(ctx, "cluster-master-0")
		if err != nil {
			return false, err
		}
		cond := framework.Condition(m, masters.ConditionType)
		return cond != nil && cond.Reason == quorum.ReasonWaitingForEndpointConsumers, nil
	}); err != nil {
		t.Fatal(err)
	}
	// Waiting is a state, not a moment: it holds for as long as the consumer is silent.
	time.Sleep(3 * time.Second)
	voters, err := e2e.VotingMembers(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Machine(ctx, "cluster-master-0")
	if err != nil {
		t.Fatal(err)
	}
	p := read()
	if !slices.Contains(voters, "cluster-master-0") || !slices.Contains(voters, "cluster-new-0") || !hooks.Has(m, hooks.Default) {
		t.Fatalf("while the consumer has not acknowledged: voters %v, hook on the old Machine %v; want the old member and the hook kept", voters, hooks.Has(m, hooks.Default))
	}
	if slices.Contains(p.Endpoints, old) || !slices.Contains(p.Endpoints, c.Agent.Member("cluster-new-0").ClientURL()) || len(p.Endpoints) != 3 {
		t.Fatalf("published %v at generation %d; want the two staying members and the replacement, not %s", p.Endpoints, p.Generation, old)
	}
	if cond := framework.Condition(m, masters.ConditionType); !strings.Contains(cond.Message, consumer+" has acknowledged another list") || !strings.Contains(cond.Message, endpoints.Short(p.Digest())) {
		t.Fatalf("condition message %q does not name the consumer that is behind and the list %s", cond.Message, endpoints.Short(p.Digest()))
	}
	acknowledgeAndFinish(t, c, cm, consumer, p.Endpoints)
}

// TestRecreatedEndpointsReleaseNothing: the consumer has rolled out the first list (with the
// old member, generation 1) and nothing later. While the old member's removal waits, the
// ConfigMap is deleted; quorumguard recreates it with the list without the old member, and
// its generation starts again at 1, the number the consumer once rolled out. The consumer's
// old generation written again, then its old acknowledgement carried over, each leave the
// member in etcd and the hook on its Machine, the condition saying which acknowledgement it
// saw; the consumer's acknowledgement of the list now published releases it.
func TestRecreatedEndpointsReleaseNothing(t *testing.T) {
	const cm, consumer = "endpoints-recreated", "kas"
	c, _ := setup(t, func(o *app.Options) { o.EndpointsConfigMap, o.EndpointConsumers = cm, []string{consumer} })
	ctx := t.Context()
	key := client.ObjectKey{Namespace: framework.MachineNamespace, Name: cm}
	old := c.Agent.Member("cluster-master-0").ClientURL()
	var first corev1.ConfigMap
	if err := framework.WaitFor(ctx, 30*time.Second, "the three members' endpoints to be published", func() (bool, error) {
		p, err := endpoints.Read(ctx, c.Client, framework.MachineNamespace, cm)
		return err == nil && len(p.Endpoints) == 3, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Get(ctx, key, &first); err != nil {
		t.Fatal(err)
	}
	rolledOut := strings.Split(first.Data[endpoints.DataEndpoints], ",")
	if err := endpoints.Acknowledge(ctx, c.Client, framework.MachineNamespace, cm, consumer, rolledOut); err != nil {
		t.Fatal(err)
	}
	oldAck := endpoints.Digest(rolledOut)
	if err := c.Client.Get(ctx, key, &first); err != nil || first.Annotations[endpoints.AckPrefix+consumer] != oldAck {
		t.Fatalf("the first ConfigMap carries acknowledgement %q (%v), want %s", first.Annotations[endpoints.AckPrefix+consumer], err, oldAck)
	}
	if err := e2e.CreateReplacement(ctx, c, "cluster-new-0"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMachine(ctx, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	heldWith := func(what string, says ...string) {
		t.Helper()
		var last string
		released := false
		if err := framework.WaitFor(ctx, 90*time.Second, "the old member's removal to wait, "+what, func() (bool, error) {
			m, err := c.Machine(ctx, "cluster-master-0")
			if apierrors.IsNotFound(err) {
				released = true
				return true, nil
			}
			if err != nil {
				return false, err
			}
			cond := framework.Condition(m, masters.ConditionType)
			if cond == nil || cond.Reason != quorum.ReasonWaitingForEndpointConsumers {
				return false, nil
			}
			last = cond.Message
			for _, s := range says {
				if !strings.Contains(cond.Message, s) {
					return false, nil
				}
			}
			return true, nil
		}); err != nil {
			t.Fatalf("%v; last condition message %q", err, last)
		}
		if released {
			t.Fatalf("%s: the old Machine is gone, its member removed and its hook released; last condition message %q", what, last)
		}
		voters, err := e2e.VotingMembers(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.Machine(ctx, "cluster-master-0")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(voters, "cluster-master-0") || !hooks.Has(m, hooks.Default) {
			t.Fatalf("%s: voters %v, hook on the old Machine %v; want the old member and the hook kept", what, voters, hooks.Has(m, hooks.Default))
		}
	}
	heldWith("the consumer runs the first list", consumer+" has acknowledged another list, "+endpoints.Short(oldAck))

	if err := c.Client.Delete(ctx, &first); err != nil {
		t.Fatal(err)
	}
	var p endpoints.Published
	if err := framework.WaitFor(ctx, 30*time.Second, "quorumguard to recreate the ConfigMap at generation 1", func() (bool, error) {
		var now corev1.ConfigMap
		if err := c.Client.Get(ctx, key, &now); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		var err error
		p, err = endpoints.Read(ctx, c.Client, framework.MachineNamespace, cm)
		return err == nil && now.UID != first.UID && p.Generation == 1, err
	}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(p.Endpoints, old) || len(p.Endpoints) != 3 {
		t.Fatalf("recreated with %v; want the two staying members and the replacement, not %s", p.Endpoints, old)
	}
	setAck := func(v string) {
		t.Helper()
		if err := framework.WaitFor(ctx, 10*time.Second, "the acknowledgement to be written", func() (bool, error) {
			err := setAnnotation(ctx, c.Client, key, endpoints.AckPrefix+consumer, v)
			return err == nil, err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The consumer writes again, from memory, the generation it rolled out: 1.
	setAck("1")
	heldWith("the consumer's old generation written again", endpoints.Short(p.Digest()), consumer+` has acknowledged "1", which is not a list digest`)
	// The first ConfigMap's acknowledgement carried over into the new one.
	setAck(first.Annotations[endpoints.AckPrefix+consumer])
	heldWith("the old acknowledgement carried over", consumer+" has acknowledged another list, "+endpoints.Short(oldAck))

	acknowledgeAndFinish(t, c, cm, consumer, p.Endpoints)
}

func setAnnotation(ctx context.Context, c client.Client, key client.ObjectKey, k, v string) error {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, key, &cm); err != nil {
		return err
	}
	metav1.SetMetaDataAnnotation(&cm.ObjectMeta, k, v)
	return c.Update(ctx, &cm)
}

// acknowledgeAndFinish acknowledges the list as consumer, then waits for the replacement of
// cluster-master-0 by cluster-new-0 to complete.
func acknowledgeAndFinish(t *testing.T, c *framework.Cluster, cm, consumer string, list []string) {
	t.Helper()
	ctx := t.Context()
	if err := endpoints.Acknowledge(ctx, c.Client, framework.MachineNamespace, cm, consumer, list); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitGone(ctx, c, 60*time.Second, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitVoters(ctx, c, 10*time.Second, "cluster-master-1", "cluster-master-2", "cluster-new-0"); err != nil {
		t.Fatal(err)
	}
}
