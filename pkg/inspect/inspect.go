package inspect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/coexist"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/openshift"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// Cluster reports, changing nothing, a fresh member list with each member's own status, the
// control-plane Machines with their failure domains, the ClusterOperator, the
// MachineHealthChecks, and the planner's next step, all as one pass of the controller
// configured by o would see them (controlplane.DryRun). Of o it reads the namespace, the
// hook, the replicas, the etcd endpoints and files, the learner timeout and the
// ClusterOperator's name.
func Cluster(ctx context.Context, cfg *rest.Config, o app.Options) (*operatorstatus.Report, error) {
	cl, err := client.New(cfg, client.Options{Scheme: app.Scheme()})
	if err != nil {
		return nil, err
	}
	view, err := app.NewEtcdView(o, cl)
	if err != nil {
		return nil, err
	}
	defer view.Close()
	topology, hold, roles := Topology(ctx, cfg)
	p, err := controlplane.DryRun(ctx, controlplane.Source{Reader: cl, Etcd: view, Namespace: o.Namespace, Hook: o.Hook, PreTerminateHook: o.PreTerminate(),
		DefaultReplicas: o.DefaultReplicas, LearnerStartTimeout: o.LearnerStartTimeout, Roles: roles})
	if err != nil {
		return nil, err
	}
	rep := &operatorstatus.Report{Time: time.Now().UTC().Truncate(time.Second), Namespace: o.Namespace, Desired: p.State.Desired}
	var mhcs machinev1beta1.MachineHealthCheckList
	if err := cl.List(ctx, &mhcs, client.InNamespace(o.Namespace)); err != nil {
		return nil, fmt.Errorf("list MachineHealthChecks: %w", err)
	}
	var cpLabels []labels.Set
	for i := range p.Machines {
		cpLabels = append(cpLabels, p.Machines[i].Labels)
	}
	rep.MachineHealthChecks = operatorstatus.CheckMachineHealthChecks(mhcs.Items, cpLabels, rep.Desired)
	if o.ClusterOperator != "" {
		co := &configv1.ClusterOperator{}
		switch err := cl.Get(ctx, client.ObjectKey{Name: o.ClusterOperator}, co); {
		case err == nil:
			rep.ClusterOperator = &operatorstatus.ClusterOperatorReport{Name: co.Name, Conditions: co.Status.Conditions, Versions: co.Status.Versions}
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("read ClusterOperator %s: %w", o.ClusterOperator, err)
		}
	}
	if p.EtcdErr != nil {
		rep.EtcdError = p.EtcdErr.Error()
		step := "nothing: etcd could not be observed"
		var nq *etcdmember.NoQuorumError
		if errors.As(p.EtcdErr, &nq) {
			step = "nothing: etcd has lost quorum"
			rep.QuorumLost = true
		}
		rep.Next = operatorstatus.NextStep{Action: string(quorum.None), Step: step, Reason: p.EtcdErr.Error()}
	} else {
		rep.Next = operatorstatus.Next(p.State, p.Decision)
	}
	rep.Topology = topology
	rep.HoldForTopology(hold)
	rep.Members = members(p)
	rep.Machines = machines(p, o.Hook)
	return rep, nil
}

// Topology is the control-plane topology as pkg/coexist reads it, why it holds quorumguard
// (empty when it does not), and the roles of the Machines that hold members. One that
// cannot be read holds, and is reported as unknown.
func Topology(ctx context.Context, cfg *rest.Config) (topology, hold string, roles []string) {
	oc, err := openshift.NewClients(cfg)
	var in coexist.Input
	if err == nil {
		in, err = coexist.Gather(ctx, oc, "")
	}
	if err != nil {
		return "unknown", coexist.TopologyHoldPrefix + "could not be read: " + err.Error(), []string{masters.MasterRole}
	}
	v := coexist.Decide(in)
	topology = string(in.Topology)
	if topology == "" {
		topology = string(configv1.HighlyAvailableTopologyMode) + " (default)"
	}
	return topology, v.Topology, v.Roles
}

// members are the observed members, each placed on its Machine as the planner places it.
func members(p *controlplane.Pass) []operatorstatus.MemberReport {
	var out []operatorstatus.MemberReport
	placement := quorum.Map(p.State.Machines, p.State.Members)
	for i, m := range p.State.Members {
		mr := operatorstatus.MemberReport{ID: fmt.Sprintf("%x", m.ID), Name: m.Name, Machine: placement.Of[m.ID].Machine, Role: "voter",
			Health: "healthy", Leader: m.Leader, PeerURLs: m.PeerURLs}
		switch pl := placement.Of[m.ID]; pl.Kind {
		case quorum.Ambiguous:
			mr.Machine, mr.Placement = "ambiguous: "+strings.Join(pl.Candidates, ", "), pl.Problem
		case quorum.Unmatched:
			mr.Machine, mr.Placement = "matches no Machine", pl.Problem
		case quorum.Invalid:
			mr.Machine, mr.Placement = "invalid peer URL", pl.Problem
		}
		if m.Learner {
			mr.Role, mr.Progress = "learner", m.Progress
		}
		switch {
		case !m.Started:
			mr.Health = "not started"
		case !m.Healthy:
			mr.Health = "unhealthy"
		}
		mr.Alarms = m.Alarms
		ob := p.Observed[i]
		mr.RaftIndex = ob.Index
		if ob.Err != nil && m.Started {
			mr.Error = ob.Err.Error()
		}
		out = append(out, mr)
	}
	return out
}

// machines are the control-plane Machines with their failure domains and EtcdMember
// condition: as stored, or, when etcd was observed, as the planner would now write it.
func machines(p *controlplane.Pass, hook machinev1beta1.LifecycleHook) []operatorstatus.MachineReport {
	var out []operatorstatus.MachineReport
	var domains []failuredomain.Domain
	if p.ControlPlaneMachineSet != nil {
		domains, _ = failuredomain.FromControlPlaneMachineSet(p.ControlPlaneMachineSet)
	}
	for i := range p.Machines {
		m := &p.Machines[i]
		mr := operatorstatus.MachineReport{Name: m.Name, Phase: ptr.Deref(m.Status.Phase, ""), Deleting: m.DeletionTimestamp != nil, Hook: hooks.Has(m, hook)}
		if ips := masters.InternalIPs(m); len(ips) > 0 {
			mr.InternalIP = ips[0]
		}
		if len(domains) > 0 {
			if d, ok, err := failuredomain.MachineDomain(domains[0].Platform, m, domains); err == nil && ok {
				mr.FailureDomain = d.Name
			}
		}
		for _, c := range m.Status.Conditions {
			if c.Type == masters.ConditionType {
				mr.EtcdMember, mr.Message = c.Reason, c.Message
			}
		}
		if c, ok := p.Decision.Conditions[m.Name]; ok {
			mr.EtcdMember, mr.Message = c.Reason, c.Message
		}
		out = append(out, mr)
	}
	return out
}
