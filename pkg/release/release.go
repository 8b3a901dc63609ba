package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/endpoints"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/pkg/snapshot"
)

// Etcd is what a release needs of etcd; *etcdmember.View implements it.
type Etcd interface {
	controlplane.Etcd
	ClaimToken(ctx context.Context, floor uint64) (uint64, error)
	RemoveMember(ctx context.Context, token, id uint64, still etcdmember.Guard) error
}

// Config is how a release reaches the cluster.
type Config struct {
	// Client reads afresh (never a cache) and writes Machines and Events.
	Client    client.Client
	Etcd      Etcd
	Namespace string
	Hook      machinev1beta1.LifecycleHook
	// PreTerminateHook is the preTerminate hook the controller keeps beside Hook; the two
	// are released together, in one write. No Name: none is kept.
	PreTerminateHook machinev1beta1.LifecycleHook
	// DefaultReplicas is the desired voting members when there is no ControlPlaneMachineSet.
	DefaultReplicas int
	// Epoch, when its Name is set, is the leader-for-life epoch ConfigMap (<lock>-epoch):
	// the token claimed is above it as well as above the etcd fence.
	Epoch client.ObjectKey
	// DryRun decides and prints, and changes nothing: no token is claimed.
	DryRun bool
	// Out receives what is done, one line a step.
	Out io.Writer
	// Instance names this run in its Events (the host, say).
	Instance string
	// EndpointConsumers, when any, are the consumers of the etcd endpoints the controller
	// publishes in ConfigMap EndpointsNamespace/EndpointsConfigMap (pkg/endpoints): a
	// member is removed only once each has acknowledged a list without it, as the controller
	// removes one; --force goes ahead and names the risk.
	EndpointsNamespace, EndpointsConfigMap string
	EndpointConsumers                      []string
	// OpenShift, when set, makes a removal wait as the controller's does under OpenShift's
	// contract (the kube-apiserver rollout); its Check only reads.
	OpenShift *endpoints.OpenShiftPublisher
	// Snapshots, when set, takes an etcd snapshot before a voting member is removed, as the
	// controller does with --snapshot-dir; a snapshot that cannot be taken refuses the
	// release before anything is changed.
	Snapshots Snapshotter
}

// Snapshotter takes an etcd snapshot; *snapshot.Taker implements it.
type Snapshotter interface {
	Take(ctx context.Context, req snapshot.Request) (snapshot.Result, error)
}

// RefusedError: the release was refused before anything was changed, for Plan.Refused.
type RefusedError struct{ Plan Plan }

func (e *RefusedError) Error() string { return "refused: " + e.Plan.Refused }

// Result is what Run did.
type Result struct {
	Plan Plan
	// Token is the fencing token claimed; 0 when nothing was changed.
	Token             uint64
	Removed, Released bool
}

// Run reads the cluster as the controller does (controlplane.DryRun: the control-plane
// Machines, the desired voting members, a fresh member list with each member's own Status),
// decides (Decide) and, unless refused or DryRun, acts: removes the member, then releases
// the hook, printing each step to Out and recording it as a ManualRelease Event on the
// Machine.
//
// Fencing. A release claims a fencing token of its own from the etcd fence, the one every
// quorumguard leadership claims from, above the leader-for-life epoch too: from then on
// the running controller's token is refused at the fence. The controller notices at its next
// membership change or hook release, changes nothing, and steps down: its process exits,
// and the restarted one claims a token above the release's (a leader-for-life finds its own
// lock, a lease holder wins the Lease again, a replica without election claims at start),
// then decides afresh on what the release left. So the two never act on the same state at
// the same time: whichever claimed last is the only one whose changes etcd accepts. Each
// step of the release passes the fence with its token and reads the member list after it;
// if a restarted controller has claimed a newer token meanwhile, the release stops there
// with a *etcdmember.FencedError, and the controller, which saw what was already done,
// carries on. A refusal and a dry run claim nothing and disturb no controller.
func Run(ctx context.Context, cfg Config, req Request) (*Result, error) {
	src := controlplane.Source{Reader: cfg.Client, Etcd: cfg.Etcd, Namespace: cfg.Namespace, Hook: cfg.Hook,
		PreTerminateHook: cfg.PreTerminateHook, DefaultReplicas: cfg.DefaultReplicas}
	pass, err := controlplane.DryRun(ctx, src)
	if err != nil {
		return nil, err
	}
	in := inputOf(req, pass.State, pass.Observed, pass.EtcdErr)
	plan := Decide(in)
	if plan.Refused == "" && plan.Remove != 0 {
		if held := cfg.consumersHold(ctx, pass.Observed, plan.Remove); held != "" {
			if req.Force {
				plan.Risks = append(plan.Risks, "the endpoint consumers may still be configured with it: "+held)
			} else {
				plan.Refused = held + "; the controller waits for them too (--force removes it anyway, and a consumer still using it loses that endpoint)"
			}
		}
	}
	res := &Result{Plan: plan}
	mach := machineNamed(pass.Machines, req.Machine)
	regarding := machinesNamed(pass.Machines, plan.Regarding)
	if mach != nil {
		regarding = append(regarding, mach)
	}
	if plan.Refused != "" {
		cfg.printf("refused: %s", plan.Refused)
		cfg.event(ctx, regarding, corev1.EventTypeWarning, "Refuse", "quorumguard release refused: "+plan.Refused)
		return res, &RefusedError{Plan: plan}
	}
	if plan.Nothing() {
		cfg.printf("Machine %s has no etcd member and no %s: nothing to release", plan.Machine, src.Hooks().Names())
		return res, nil
	}
	for _, r := range plan.Risks {
		cfg.printf("--force: going ahead although %s", r)
	}
	if cfg.DryRun {
		if plan.Remove != 0 {
			cfg.printf("dry run: would remove etcd member %s (%s)", plan.Member, plan.Why)
		}
		if plan.Release {
			cfg.printf("dry run: would release %s of Machine %s", src.Hooks().Names(), plan.Machine)
		}
		return res, nil
	}

	// The restore point comes first, before the controller is fenced out: a snapshot that
	// cannot be taken refuses the release with nothing changed.
	if sreq, needed := controlplane.SnapshotRequest(pass.Observed, plan.Remove, plan.Machine); plan.Remove != 0 && cfg.Snapshots != nil && needed {
		taken, err := cfg.Snapshots.Take(ctx, sreq)
		if err != nil {
			plan.Refused = fmt.Sprintf("no etcd snapshot could be taken before removing member %s, and none is removed without one (--snapshot-dir): %v", plan.Member, err)
			cfg.printf("refused: %s", plan.Refused)
			cfg.event(ctx, regarding, corev1.EventTypeWarning, "SnapshotFailed", "quorumguard release refused: "+plan.Refused)
			return res, &RefusedError{Plan: plan}
		}
		cfg.printf("etcd snapshot before the removal: %s (%d bytes, from member %x)", taken.Path, taken.Size, taken.From)
	}

	floor, err := cfg.epoch(ctx)
	if err != nil {
		return res, err
	}
	token, err := cfg.Etcd.ClaimToken(ctx, floor)
	if err != nil {
		return res, fmt.Errorf("claim a fencing token: %w", err)
	}
	res.Token = token
	cfg.printf("claimed fencing token %d: a running quorumguard controller is fenced out from now on, and restarts and claims a newer one at its next change", token)

	// still is the release's own reason, decided again on the member list read after the
	// fence, on the same Machines: the step is taken only if it is still the one decided.
	still := func(want Plan) etcdmember.Guard {
		return func(fresh []etcdmember.Observed) error {
			st := controlplane.StateOf(pass.Machines, fresh, pass.ControlPlaneMachineSet, src.Hooks(), pass.State.Desired)
			now := Decide(inputOf(req, st, fresh, nil))
			if now.Refused != "" {
				return errors.New(now.Refused)
			}
			if now.Remove != want.Remove || now.Release != want.Release {
				return fmt.Errorf("decided %s, but on the member list read after the fence: %s", want.steps(), now.steps())
			}
			return nil
		}
	}

	if plan.Remove != 0 {
		note := fmt.Sprintf("removing etcd member %s (%s)", plan.Member, plan.Why)
		if len(plan.Risks) > 0 {
			note += "; forced although " + joinRisks(plan.Risks)
		}
		cfg.printf("%s", note)
		if err := cfg.remove(ctx, token, plan.Remove, still(plan)); err != nil {
			err = fmt.Errorf("remove etcd member %s: %w", plan.Member, explain(err))
			cfg.printf("not removed: %v", err)
			cfg.event(ctx, regarding, corev1.EventTypeWarning, "RemoveMember", "quorumguard release did not remove etcd member "+plan.Member+": "+err.Error())
			return res, err
		}
		res.Removed = true
		cfg.printf("removed etcd member %s", plan.Member)
		cfg.event(ctx, regarding, eventType(plan), "RemoveMember", "quorumguard release: "+strings.Replace(note, "removing", "removed", 1))
	}
	if !plan.Release || mach == nil {
		return res, nil
	}

	// The hook goes only once the fence passes again and a member list read after it shows
	// no member on the Machine: the same decision, one step on.
	after := Plan{Machine: plan.Machine, Release: true}
	fenceAndCheck := func() error {
		if err := cfg.Etcd.Fence(ctx, token); err != nil {
			return err
		}
		fresh, err := cfg.Etcd.Observe(ctx)
		if err != nil {
			return fmt.Errorf("read the member list after the fence: %w", err)
		}
		return still(after)(fresh)
	}
	addrs, node := fmt.Sprint(mach.Status.Addresses), fmt.Sprint(mach.Status.NodeRef)
	unchanged := func(fresh *machinev1beta1.Machine) error {
		if fresh.DeletionTimestamp == nil || fmt.Sprint(fresh.Status.Addresses) != addrs || fmt.Sprint(fresh.Status.NodeRef) != node {
			return hooks.ErrChanged
		}
		return fenceAndCheck()
	}
	if err := fenceAndCheck(); err != nil {
		err = fmt.Errorf("release %s of Machine %s: %w", src.Hooks().Names(), mach.Name, explain(err))
		cfg.printf("not released: %v", err)
		cfg.event(ctx, regarding, corev1.EventTypeWarning, "ReleaseHook", "quorumguard release did not release the hook: "+err.Error())
		return res, err
	}
	why := "no etcd member is left on the Machine"
	if plan.Remove != 0 {
		why = "its etcd member " + plan.Member + " was removed"
	}
	w := hooks.Writer{Client: cfg.Client, Reader: cfg.Client}
	// The condition goes first, as the controller writes it, so that the controller does
	// not take the missing hook for one removed by someone else.
	if err := w.Patch(ctx, mach, true, func(cur *machinev1beta1.Machine) (bool, error) {
		if cur.ResourceVersion != mach.ResourceVersion {
			if err := unchanged(cur); err != nil {
				return false, err
			}
		}
		return setReleased(cur, "hook released by quorumguard release: "+why), nil
	}); err != nil {
		err = fmt.Errorf("record the release on Machine %s before making it: %w", mach.Name, err)
		cfg.printf("not released: %v", err)
		return res, err
	}
	if err := w.ReleaseSet(ctx, mach, src.Hooks(), unchanged); err != nil {
		err = explain(err)
		cfg.printf("not released: %v", err)
		cfg.event(ctx, regarding, corev1.EventTypeWarning, "ReleaseHook", "quorumguard release did not release the hook: "+err.Error())
		return res, err
	}
	res.Released = true
	cfg.printf("released %s of Machine %s: %s", src.Hooks().Names(), mach.Name, why)
	note := "quorumguard release released " + src.Hooks().Names() + ": " + why
	if len(plan.Risks) > 0 {
		note += "; forced although " + joinRisks(plan.Risks)
	}
	cfg.event(ctx, []*machinev1beta1.Machine{mach}, eventType(plan), "ReleaseHook", note)
	return res, nil
}

// healthWindowWait bounds how long a removal waits out etcd's refusal for its health
// window (quorum.HealthWindow after the newest member's promotion, or a restart).
const healthWindowWait = quorum.HealthWindow + 5*time.Second

// remove removes member id through the fence. etcd refuses, as "unhealthy cluster", a
// removal until its members have been connected for its health window; that refusal passes
// by itself, so it is tried again each second, the fence and the guard passed each time,
// until healthWindowWait. Any other refusal is returned at once.
func (cfg Config) remove(ctx context.Context, token, id uint64, still etcdmember.Guard) error {
	deadline := time.Now().Add(healthWindowWait)
	for {
		err := cfg.Etcd.RemoveMember(ctx, token, id, still)
		var refused *etcdmember.UnsafeChangeError
		if !errors.As(err, &refused) || !refused.Passes || time.Now().After(deadline) {
			return err
		}
		cfg.printf("etcd refuses for now (%s): it allows a removal once its members have been connected for %s; trying again", refused.Reason, quorum.HealthWindow)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// explain adds to err, when the fence refused it, what that means for the person running
// the release.
func explain(err error) error {
	var fe *etcdmember.FencedError
	if errors.As(err, &fe) {
		return fmt.Errorf("%w: a quorumguard leader claimed a newer token meanwhile (it restarted after this release fenced it out) and decides from here on what it reads; run the release again if the Machine is still held", err)
	}
	return err
}

// inputOf builds Decide's input from what one read gave.
func inputOf(req Request, st quorum.State, observed []etcdmember.Observed, etcdErr error) Input {
	in := Input{Request: req, State: st, EtcdErr: etcdErr, Dead: map[uint64]bool{}}
	for _, o := range observed {
		// Dead: it did not answer its own Status (a probe failed), or it never ran. One that
		// answers without naming a leader is alive, only cut off.
		if !o.Answered && !o.Healthy && (o.Err != nil || !o.Started) {
			in.Dead[o.ID] = true
		}
	}
	return in
}

func (p Plan) steps() string {
	switch {
	case p.Refused != "":
		return "refused: " + p.Refused
	case p.Remove != 0 && p.Release:
		return fmt.Sprintf("remove member %x, then release the hook", p.Remove)
	case p.Remove != 0:
		return fmt.Sprintf("remove member %x", p.Remove)
	case p.Release:
		return "release the hook"
	default:
		return "nothing"
	}
}

// epoch is the leader-for-life epoch, 0 when there is none.
func (cfg Config) epoch(ctx context.Context) (uint64, error) {
	if cfg.Epoch.Name == "" {
		return 0, nil
	}
	cm := &corev1.ConfigMap{}
	switch err := cfg.Client.Get(ctx, cfg.Epoch, cm); {
	case apierrors.IsNotFound(err):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read the leader's epoch ConfigMap %s (the token claimed must be above it): %w", cfg.Epoch, err)
	}
	v := cm.Data["token"]
	t, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("epoch ConfigMap %s holds token %q, which is not a number; nothing is changed", cfg.Epoch, v)
	}
	return t, nil
}

// setReleased sets the Machine's EtcdMember condition to HookReleased.
func setReleased(m *machinev1beta1.Machine, msg string) bool {
	next := machinev1beta1.Condition{Type: masters.ConditionType, Status: corev1.ConditionFalse, Severity: machinev1beta1.ConditionSeverityInfo,
		Reason: quorum.ReasonHookReleased, Message: msg, LastTransitionTime: metav1.Now()}
	for i := range m.Status.Conditions {
		c := &m.Status.Conditions[i]
		if c.Type != masters.ConditionType {
			continue
		}
		if c.Reason == next.Reason && c.Message == next.Message {
			return false
		}
		if c.Status == next.Status {
			next.LastTransitionTime = c.LastTransitionTime
		}
		*c = next
		return true
	}
	m.Status.Conditions = append(m.Status.Conditions, next)
	return true
}

func eventType(p Plan) string {
	if len(p.Risks) > 0 {
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}

func joinRisks(r []string) string { return strings.Join(r, "; ") }

func (cfg Config) printf(format string, args ...any) {
	if cfg.Out != nil {
		fmt.Fprintf(cfg.Out, format+"\n", args...)
	}
}

func machineNamed(ms []machinev1beta1.Machine, name string) *machinev1beta1.Machine {
	for i := range ms {
		if name != "" && ms[i].Name == name {
			return &ms[i]
		}
	}
	return nil
}

func machinesNamed(ms []machinev1beta1.Machine, names []string) []*machinev1beta1.Machine {
	var out []*machinev1beta1.Machine
	for _, n := range names {
		if m := machineNamed(ms, n); m != nil {
			out = append(out, m)
		}
	}
	return out
}

// consumersHold says why member id's removal must wait for the endpoint consumers, as the
// controller's does (endpoints.Holds): the published list still names it, or a consumer has
// not acknowledged the list without it. With consumers declared and the list unreadable,
// it waits: nothing is removed on a guess. "" when it may go.
func (cfg Config) consumersHold(ctx context.Context, observed []etcdmember.Observed, id uint64) string {
	if why := cfg.rolloutHold(ctx, observed, id); why != "" {
		return why
	}
	if len(cfg.EndpointConsumers) == 0 {
		return ""
	}
	pub, err := endpoints.Read(ctx, cfg.Client, cfg.EndpointsNamespace, cfg.EndpointsConfigMap)
	if err != nil {
		return fmt.Sprintf("the published etcd endpoints %s/%s cannot be read (%v), so whether endpoint consumers %s still use member %x is unknown",
			cfg.EndpointsNamespace, cfg.EndpointsConfigMap, err, strings.Join(cfg.EndpointConsumers, ", "), id)
	}
	var ms []endpoints.Member
	for _, o := range observed {
		if o.ID == id {
			ms = append(ms, endpoints.Member{ID: o.ID, ClientURLs: o.ClientURLs})
		}
	}
	return endpoints.Holds(ms, pub, cfg.EndpointConsumers)[id]
}

// rolloutHold says why member id's removal must wait for the kube-apiserver rollout, as the
// controller's does under OpenShift's contract (endpoints.OpenShiftPublisher): etcd-endpoints
// still lists it, or a node's current revision still dials it. "" when it may go, or when the
// cluster has no kube-apiserver operator.
func (cfg Config) rolloutHold(ctx context.Context, observed []etcdmember.Observed, id uint64) string {
	if cfg.OpenShift == nil {
		return ""
	}
	var ms []endpoints.Member
	for _, o := range observed {
		if o.ID == id {
			ms = append(ms, endpoints.Member{ID: o.ID, Name: o.Name, ClientURLs: o.ClientURLs, PeerURLs: o.PeerURLs, Voting: o.Started && !o.IsLearner})
		}
	}
	return cfg.OpenShift.Check(ctx, ms).Holds[id]
}
