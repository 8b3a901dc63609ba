package plan

import (
	"errors"
	"strings"

	machinev1 "github.com/openshift/api/machine/v1"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/masters"
)

// FromPass is a plan's start from one dry pass of the controller (controlplane.DryRun): its
// State with failure domains by name, the Machines' indexes, and, when the
// ControlPlaneMachineSet is Active, its strategy and failure domains, or domains instead of
// them when given (by name, as us-east-1a). It reads nothing itself.
func FromPass(p *controlplane.Pass, deleted, domains []string) (Input, error) {
	in := Input{State: p.State, Delete: deleted}
	in.State.Machines = append(in.State.Machines[:0:0], p.State.Machines...)
	cpms := p.ControlPlaneMachineSet
	active := cpms != nil && cpms.Spec.State == machinev1.ControlPlaneMachineSetStateActive
	if len(domains) > 0 && !active {
		return in, errors.New("--domains needs an Active ControlPlaneMachineSet: without one, nothing moves a Machine between failure domains")
	}
	if !active {
		return in, nil
	}
	listed, _ := failuredomain.FromControlPlaneMachineSet(cpms) // unusable domains: none known, as the controller reads them
	names := map[string]string{}
	ms := &MachineSet{Strategy: string(cpms.Spec.Strategy.Type)}
	for _, d := range listed {
		names[d.Key()] = d.Name
		ms.Domains = append(ms.Domains, d.Name)
	}
	for i := range in.State.Machines {
		if n, ok := names[in.State.Machines[i].Domain]; ok {
			in.State.Machines[i].Domain = n
		}
	}
	if len(domains) > 0 {
		ms.Domains = nil
		for _, d := range domains {
			if d = strings.TrimSpace(d); d != "" {
				ms.Domains = append(ms.Domains, d)
			}
		}
	}
	in.MachineSet = ms
	in.Indexes = map[string]int{}
	for name, a := range masters.IndexesOf(p.Machines, cpms) {
		if a.Err == nil {
			in.Indexes[name] = a.Index
		}
	}
	return in, nil
}
