package e2e_test

import (
	"slices"
	"strings"
	"testing"
	"time"

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
	if err := endpoints.Acknowledge(ctx, c.Client, framework.MachineNamespace, cm, consumer, read().Generation); err != nil {
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
	if cond := framework.Condition(m, masters.ConditionType); !strings.Contains(cond.Message, consumer+" has acknowledged generation") {
		t.Fatalf("condition message %q does not name the consumer that is behind", cond.Message)
	}
	if err := endpoints.Acknowledge(ctx, c.Client, framework.MachineNamespace, cm, consumer, p.Generation); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitGone(ctx, c, 60*time.Second, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitVoters(ctx, c, 10*time.Second, "cluster-master-1", "cluster-master-2", "cluster-new-0"); err != nil {
		t.Fatal(err)
	}
}
