package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/coexist"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/test/framework"
)

// TestStatusCommandTopology: `quorumguard status` says which control-plane topology it reads,
// and that a DualReplica one holds quorumguard (no next step); on a HighlyAvailableArbiter
// one it lists the arbiter Machine with the masters.
func TestStatusCommandTopology(t *testing.T) {
	ctx := t.Context()
	c, err := framework.StartCluster(ctx, controlPlane(t), framework.ClusterOptions{Dir: t.TempDir(), ProvisionDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	infra := &configv1.Infrastructure{ObjectMeta: metav1.ObjectMeta{Name: coexist.InfrastructureName}}
	if err := c.Client.Create(ctx, infra); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.Delete(context.Background(), infra) })
	setTopology := func(mode configv1.TopologyMode) {
		t.Helper()
		infra.Status.ControlPlaneTopology, infra.Status.InfrastructureTopology = mode, configv1.HighlyAvailableTopologyMode
		if err := c.Client.Status().Update(ctx, infra); err != nil {
			t.Fatal(err)
		}
	}
	ca, cert, key := c.Net.ClientFiles()
	run := func(extra ...string) string {
		t.Helper()
		var out bytes.Buffer
		args := append([]string{"--kubeconfig", c.CP.KubeconfigFile, "--etcd-ca-file", ca, "--etcd-cert-file", cert, "--etcd-key-file", key}, extra...)
		if err := statusCommand(ctx, args, &out); err != nil {
			t.Fatalf("status %v: %v\n%s", extra, err, out.String())
		}
		return out.String()
	}

	table := run()
	mustContain(t, table, "CONTROL-PLANE TOPOLOGY: HighlyAvailable (default)")
	if strings.Contains(table, "HELD:") {
		t.Errorf("held with no Infrastructure:\n%s", table)
	}

	setTopology(configv1.DualReplicaTopologyMode)
	table = run()
	mustContain(t, table, "CONTROL-PLANE TOPOLOGY: DualReplica", "HELD: "+coexist.TopologyHoldPrefix, "Pacemaker owns etcd membership",
		"NEXT STEP: nothing: held for the control-plane topology")
	var rep operatorstatus.Report
	if err := json.Unmarshal([]byte(run("-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Topology != "DualReplica" || !strings.Contains(rep.TopologyHold, "Pacemaker") || rep.Next.Action != "None" {
		t.Errorf("JSON: topology %q, hold %q, next %+v; want DualReplica held with no action", rep.Topology, rep.TopologyHold, rep.Next)
	}

	arbiter := c.NewMaster("cluster-arbiter-0", framework.AWSProviderSpec("us-east-1a", "subnet-us-east-1a"))
	arbiter.Labels[framework.RoleLabel], arbiter.Labels[framework.TypeLabel] = masters.ArbiterRole, masters.ArbiterRole
	if err := c.Client.Create(ctx, arbiter); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.Delete(context.Background(), arbiter) })
	setTopology(configv1.HighlyAvailableArbiterMode)
	table = run()
	mustContain(t, table, "CONTROL-PLANE TOPOLOGY: HighlyAvailableArbiter")
	mustMatchLine(t, table, "cluster-arbiter-0")
	if strings.Contains(table, "HELD:") {
		t.Errorf("held on HighlyAvailableArbiter:\n%s", table)
	}
	setTopology(configv1.HighlyAvailableTopologyMode)
	if table = run(); strings.Contains(table, "cluster-arbiter-0") {
		t.Errorf("the arbiter listed on a HighlyAvailable control plane:\n%s", table)
	}
}
