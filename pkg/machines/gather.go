package machines

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// MasterNodeLabel marks control-plane Nodes.
const MasterNodeLabel = "node-role.kubernetes.io/master"

// Problem reasons found while gathering.
const (
	ReasonUnsupportedMachineType     = "UnsupportedMachineType"
	ReasonInvalidSelector            = "InvalidSelector"
	ReasonTemplateLabelsMismatch     = "TemplateLabelsDoNotMatchSelector"
	ReasonUnsupportedPlatform        = "UnsupportedPlatform"
	ReasonInvalidFailureDomains      = "InvalidFailureDomains"
	ReasonInvalidTemplate            = "InvalidTemplateProviderSpec"
	ReasonInvalidMachineProviderSpec = "InvalidMachineProviderSpec"
)

const (
	machineTemplatePath = "spec.template.machines_v1beta1_machine_openshift_io"
	machineTypePath     = "spec.template.machineType"
)

// snapshot is what one pass gathered: the objects to act on and the Plan input.
type snapshot struct {
	cpms     *machinev1.ControlPlaneMachineSet
	machines map[string]*machinev1beta1.Machine
	domains  map[string]failuredomain.Domain
	input    Input
}

// gather reads the ControlPlaneMachineSet and its Machines through reader (the cache or the
// API server) and the control-plane Nodes from the API server. It returns nil when there is
// no ControlPlaneMachineSet.
func (r *Reconciler) gather(ctx context.Context, reader client.Reader) (*snapshot, error) {
	cpms := &machinev1.ControlPlaneMachineSet{}
	err := reader.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: masters.CPMSName}, cpms)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ControlPlaneMachineSet %s/%s: %w", r.Namespace, masters.CPMSName, err)
	}
	snap := &snapshot{cpms: cpms, machines: map[string]*machinev1beta1.Machine{}, domains: map[string]failuredomain.Domain{}}
	in := &snap.input
	in.Generation = cpms.Generation
	in.Active = cpms.Spec.State == machinev1.ControlPlaneMachineSetStateActive
	in.Strategy = string(cpms.Spec.Strategy.Type)
	in.Replicas = int(ptr.Deref(cpms.Spec.Replicas, 0))
	in.Now = r.now()
	in.MaxAttempts = r.MaxAttempts
	in.Backoff = r.Backoff

	tmpl := cpms.Spec.Template.OpenShiftMachineV1Beta1Machine
	switch {
	case cpms.Spec.Template.MachineType != machinev1.OpenShiftMachineV1Beta1MachineType:
		in.Problems = append(in.Problems, Problem{ReasonUnsupportedMachineType, machineTypePath,
			fmt.Sprintf("%q; supported is %s", cpms.Spec.Template.MachineType, machinev1.OpenShiftMachineV1Beta1MachineType)})
	case tmpl == nil:
		in.Problems = append(in.Problems, Problem{ReasonUnsupportedMachineType, machineTemplatePath, "the machine template is not set"})
	}
	selector, err := metav1.LabelSelectorAsSelector(&cpms.Spec.Selector)
	if err != nil {
		in.Problems = append(in.Problems, Problem{ReasonInvalidSelector, "spec.selector", err.Error()})
		selector = nil
	} else if tmpl != nil && !selector.Matches(labels.Set(tmpl.ObjectMeta.Labels)) {
		in.Problems = append(in.Problems, Problem{ReasonTemplateLabelsMismatch, machineTemplatePath + ".metadata.labels",
			fmt.Sprintf("do not match spec.selector %q, so the Machines created would not be counted", selector)})
	}

	domains, platform, problems := templateFacts(cpms)
	in.Problems = append(in.Problems, problems...)
	for _, d := range domains {
		snap.domains[d.Key()] = d
		in.Domains = append(in.Domains, d.Key())
	}

	if selector != nil {
		var list machinev1beta1.MachineList
		if err := reader.List(ctx, &list, client.InNamespace(r.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
			return nil, fmt.Errorf("list Machines in %s: %w", r.Namespace, err)
		}
		slices.SortFunc(list.Items, func(a, b machinev1beta1.Machine) int { return strings.Compare(a.Name, b.Name) })
		templateOK := len(in.Problems) == 0
		indexes := masters.IndexesOf(list.Items, cpms)
		for i := range list.Items {
			m := &list.Items[i]
			if m.Labels[masters.RoleLabel] != "master" {
				continue // only control-plane Machines are this controller's
			}
			snap.machines[m.Name] = m
			pm, problem := r.machineFacts(cpms, m, list.Items, indexes[m.Name], platform, domains, templateOK)
			if problem != nil {
				in.Problems = append(in.Problems, *problem)
			}
			in.Machines = append(in.Machines, pm)
		}
	}

	var nodes corev1.NodeList
	if err := r.APIReader.List(ctx, &nodes, client.HasLabels{MasterNodeLabel}); err != nil {
		return nil, fmt.Errorf("list control-plane Nodes: %w", err)
	}
	for _, n := range nodes.Items {
		pn := Node{Name: n.Name}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				pn.InternalIPs = append(pn.InternalIPs, a.Address)
			}
		}
		in.Nodes = append(in.Nodes, pn)
	}
	in.Problems = uniqueProblems(in.Problems)
	return snap, nil
}

// templateFacts reads the failure domains and checks the template: every listed domain
// must write into the template's providerSpec, and with none listed the providerSpec must
// still be JSON. One fault of the template shows once, not once per domain.
func templateFacts(cpms *machinev1.ControlPlaneMachineSet) ([]failuredomain.Domain, configv1.PlatformType, []Problem) {
	tmpl := cpms.Spec.Template.OpenShiftMachineV1Beta1Machine
	if tmpl == nil {
		return nil, "", nil
	}
	var problems []Problem
	domains, err := failuredomain.FromControlPlaneMachineSet(cpms)
	if err != nil {
		problems = append(problems, domainProblems(err)...)
	}
	platform := configv1.PlatformType("")
	if len(domains) > 0 {
		platform = domains[0].Platform
	}
	for _, d := range domains {
		if _, err := failuredomain.WithDomain(cpms, d); err != nil {
			problems = append(problems, problemOf(ReasonInvalidTemplate, templateProviderSpec, err))
		}
	}
	if len(domains) == 0 && err == nil {
		if _, err := decodeJSON(tmpl.Spec.ProviderSpec.Value); err != nil {
			problems = append(problems, Problem{ReasonInvalidTemplate, templateProviderSpec, err.Error()})
		}
	}
	return domains, platform, uniqueProblems(problems)
}

// uniqueProblems drops repeats of a problem, keeping the first.
func uniqueProblems(ps []Problem) []Problem {
	seen := map[Problem]bool{}
	out := ps[:0:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// machineFacts turns a Machine into what Plan needs. The providerSpec is compared only when
// the template is usable.
func (r *Reconciler) machineFacts(cpms *machinev1.ControlPlaneMachineSet, m *machinev1beta1.Machine, all []machinev1beta1.Machine, index failuredomain.Assignment, platform configv1.PlatformType, domains []failuredomain.Domain, templateOK bool) (Machine, *Problem) {
	pm := Machine{
		Name: m.Name, Deleting: m.DeletionTimestamp != nil, Phase: ptr.Deref(m.Status.Phase, ""),
		Created: m.CreationTimestamp.Time, ErrorMessage: ptr.Deref(m.Status.ErrorMessage, ""),
	}
	// Which Machines may hold an etcd member has one definition, shared with the quorum
	// controller: a Machine it rejects is a problem here, never a member there.
	switch ok, why := masters.MayHoldMember(m, all, cpms); {
	case !ok:
		pm.IndexErr = why
	case index.Err != nil:
		pm.IndexErr = index.Err.Error()
	default:
		pm.Index, pm.Adopt = index.Index, index.Pending
	}
	for _, c := range m.Status.Conditions {
		if c.Type == masters.ConditionType {
			pm.Voting = c.Status == corev1.ConditionTrue && c.Reason == quorum.ReasonVoting
		}
	}
	pm.Attempt, _ = strconv.Atoi(m.Annotations[AttemptAnnotation])
	pm.Why = m.Annotations[ReasonAnnotation]
	pm.FailedAttempts, _ = strconv.Atoi(m.Annotations[FailedAttemptsAnnotation])
	if t, err := time.Parse(time.RFC3339Nano, m.Annotations[LastFailureAnnotation]); err == nil {
		pm.LastFailure = t
	}
	if m.Status.NodeRef != nil {
		pm.NodeName = m.Status.NodeRef.Name
	}
	for _, a := range m.Status.Addresses {
		pm.Addresses = append(pm.Addresses, a.Address)
	}
	if !templateOK {
		return pm, nil
	}
	var own *failuredomain.Domain
	if len(domains) > 0 {
		d, matched, err := failuredomain.MachineDomain(platform, m, domains)
		if err != nil {
			p := problemOf(ReasonInvalidMachineProviderSpec, "Machine "+m.Name+" "+machineProviderSpec, err)
			return pm, &p
		}
		// A Machine in no listed domain is compared with the first domain written into both.
		own = &domains[0]
		if matched {
			pm.Domain = d.Key()
			own = &d
		}
	}
	diff, err := providerSpecDiff(cpms, m, own)
	if err != nil {
		p := problemOf(ReasonInvalidMachineProviderSpec, "Machine "+m.Name+" "+machineProviderSpec, err)
		return pm, &p
	}
	pm.Updated, pm.Diff = diff == "", diff
	return pm, nil
}

// domainProblems turns failuredomain's errors into problems, one per field.
func domainProblems(err error) []Problem {
	var out []Problem
	var walk func(error)
	walk = func(e error) {
		var j interface{ Unwrap() []error }
		if errors.As(e, &j) {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		reason := ReasonInvalidFailureDomains
		switch {
		case errors.Is(e, failuredomain.ErrUnknownPlatform):
			reason = ReasonUnsupportedPlatform
		}
		out = append(out, problemOf(reason, machineTemplatePath+".failureDomains", e))
	}
	walk(err)
	return out
}

// problemOf names the field a failuredomain.FieldError gives, else field.
func problemOf(reason, field string, err error) Problem {
	var fe *failuredomain.FieldError
	if errors.As(err, &fe) {
		msg := fe.Detail
		if fe.Err != nil {
			msg = fe.Err.Error() + ": " + fe.Detail
		}
		if fe.Field != "" {
			field = fe.Field
		}
		if fe.Object != "" && !strings.HasPrefix(field, "Machine ") && !strings.HasPrefix(fe.Object, "ControlPlaneMachineSet") {
			field = fe.Object + " " + field
		}
		return Problem{reason, field, msg}
	}
	return Problem{reason, field, err.Error()}
}
