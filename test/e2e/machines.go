package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/machines"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/framework"
)

// MachinesOptions shape a Machine controller started by StartMachines.
type MachinesOptions struct {
	// App are the options the controller takes from the command line; with ManageMachines
	// off nothing is started, as pkg/app registers nothing.
	App app.Options
	// WrapClient, when set, wraps the manager's cached client (to make it stale, say).
	WrapClient func(client.Client) client.Client
	// MaxAttempts, Backoff and IdleResync override the controller's defaults when set.
	MaxAttempts int
	Backoff     time.Duration
	IdleResync  time.Duration
	// Token, when set, is the fencing token the controller acts with; otherwise it takes the
	// one stored in the cluster's etcd fence at start (that of the quorum controller started
	// before it), or claims one when none is stored.
	Token uint64
	// WrapEtcd, when set, wraps the etcd fence the controller passes (to count its answers).
	WrapEtcd func(machines.EtcdFence) machines.EtcdFence
	// StepDown, when set, is told when the etcd fence refuses the controller's token.
	StepDown func(error)
}

// MachineController is a Machine controller in its own manager, built as pkg/app builds it
// (the cache holds only control-plane Machines of the namespace).
type MachineController struct {
	cancel context.CancelFunc
	done   chan error
	etcd   *etcdmember.Client
}

// clusterFence passes the etcd fence through whichever members of the cluster run at the
// time of the call: a rollout replaces every member the controller started with.
type clusterFence struct {
	c   *framework.Cluster
	cli *etcdmember.Client
}

func (f clusterFence) Fence(ctx context.Context, token uint64) error {
	if eps := f.c.Agent.RunningEndpoints(); len(eps) > 0 {
		f.cli.SetEndpoints(eps...)
	}
	return f.cli.Fence(ctx, token)
}

// machinesToken is the token a Machine controller started by StartMachines acts with.
func machinesToken(ctx context.Context, cli *etcdmember.Client, given uint64) (uint64, error) {
	if given != 0 {
		return given, nil
	}
	stored, err := cli.FenceToken(ctx)
	if err != nil || stored != 0 {
		return stored, err
	}
	return cli.ClaimToken(ctx, 0)
}

// StartMachines starts the Machine controller against the cluster's apiserver.
func StartMachines(ctx context.Context, c *framework.Cluster, o MachinesOptions) (*MachineController, error) {
	if !o.App.ManageMachines {
		return &MachineController{}, nil
	}
	role := labels.SelectorFromSet(labels.Set{masters.RoleLabel: "master"})
	ns := map[string]cache.Config{o.App.Namespace: {}}
	mgr, err := ctrl.NewManager(c.CP.Config, ctrl.Options{
		Scheme:                 app.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&machinev1beta1.Machine{}:           {Label: role, Namespaces: ns},
			&machinev1.ControlPlaneMachineSet{}: {Namespaces: ns},
		}},
		GracefulShutdownTimeout: ptr.To(5 * time.Second),
		Controller:              config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, err
	}
	cl := mgr.GetClient()
	if o.WrapClient != nil {
		cl = o.WrapClient(cl)
	}
	ca, cert, key := c.Net.ClientFiles()
	cli, err := etcdmember.NewFromFiles(etcdmember.Config{Endpoints: c.Agent.RunningEndpoints()}, etcdmember.TLSFiles{CA: ca, Cert: cert, Key: key})
	if err != nil {
		return nil, err
	}
	token, err := machinesToken(ctx, cli, o.Token)
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("the Machine controller's fencing token: %w", err)
	}
	var etcd machines.EtcdFence = clusterFence{c: c, cli: cli}
	if o.WrapEtcd != nil {
		etcd = o.WrapEtcd(etcd)
	}
	r := &machines.Reconciler{
		Client: cl, APIReader: mgr.GetAPIReader(), Namespace: o.App.Namespace, Hook: o.App.Hook,
		Fence: masters.StaticFence(token), Etcd: etcd, StepDown: o.StepDown, Recorder: mgr.GetEventRecorder("quorumguard-machines"),
		PollInterval: o.App.PollInterval, IdleResync: o.IdleResync, MaxAttempts: o.MaxAttempts, Backoff: o.Backoff,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		_ = cli.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	mc := &MachineController{cancel: cancel, done: make(chan error, 1), etcd: cli}
	go func() { mc.done <- mgr.Start(ctx) }()
	return mc, nil
}

// Stop stops the controller.
func (mc *MachineController) Stop() error {
	if mc.cancel == nil {
		return nil
	}
	mc.cancel()
	defer func() { _ = mc.etcd.Close() }()
	select {
	case err := <-mc.done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("the Machine controller did not stop within 30s")
	}
}

// StaleMachines is a client whose Machine lists return a frozen snapshot while one is set,
// as a cache that has not seen the latest Machines would. Everything else passes through.
type StaleMachines struct {
	client.Client
	mu     sync.Mutex
	frozen *machinev1beta1.MachineList
	served int
}

// Served is how many lists were answered from the frozen snapshot.
func (s *StaleMachines) Served() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// Freeze makes Machine lists return list until Thaw.
func (s *StaleMachines) Freeze(list *machinev1beta1.MachineList) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = list.DeepCopy()
}

// Thaw makes the client current again.
func (s *StaleMachines) Thaw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = nil
}

// List serves the frozen Machines while frozen.
func (s *StaleMachines) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ml, ok := list.(*machinev1beta1.MachineList); ok && s.frozen != nil {
		s.frozen.DeepCopyInto(ml)
		s.served++
		return nil
	}
	return s.Client.List(ctx, list, opts...)
}

// Zone names the test zones: Zone('a') is us-east-1a.
func Zone(letter byte) string { return "us-east-1" + string(letter) }

// ZoneSpec is the providerSpec of a Machine in the zone named by letter, with its subnet.
func ZoneSpec(letter byte) *runtime.RawExtension {
	return framework.AWSProviderSpec(Zone(letter), "subnet-"+Zone(letter))
}

// CPMSInput describes a ControlPlaneMachineSet for NewCPMS.
type CPMSInput struct {
	Strategy machinev1.ControlPlaneMachineSetStrategyType
	// Zones are the failure domains by letter ("abc"), each with its subnet.
	Zones string
	// InstanceType, when set, changes the template's instance type from the Machines'.
	InstanceType string
	Annotations  map[string]string
}

// NewCPMS returns an Active ControlPlaneMachineSet `cluster` for the cluster's Machines.
func NewCPMS(c *framework.Cluster, in CPMSInput) *machinev1.ControlPlaneMachineSet {
	if in.Strategy == "" {
		in.Strategy = machinev1.RollingUpdate
	}
	lbls := map[string]string{framework.RoleLabel: "master", framework.TypeLabel: "master", framework.ClusterLabel: c.Opts.Prefix}
	cpms := &machinev1.ControlPlaneMachineSet{
		ObjectMeta: metav1.ObjectMeta{Name: masters.CPMSName, Namespace: framework.MachineNamespace},
		Spec: machinev1.ControlPlaneMachineSetSpec{
			State:    machinev1.ControlPlaneMachineSetStateActive,
			Replicas: ptr.To[int32](3),
			Strategy: machinev1.ControlPlaneMachineSetStrategy{Type: in.Strategy},
			Selector: metav1.LabelSelector{MatchLabels: lbls},
			Template: machinev1.ControlPlaneMachineSetTemplate{
				MachineType: machinev1.OpenShiftMachineV1Beta1MachineType,
				OpenShiftMachineV1Beta1Machine: &machinev1.OpenShiftMachineV1Beta1MachineTemplate{
					ObjectMeta: machinev1.ControlPlaneMachineSetTemplateObjectMeta{Labels: lbls, Annotations: in.Annotations},
					Spec:       machinev1beta1.MachineSpec{ProviderSpec: machinev1beta1.ProviderSpec{Value: TemplateSpec(in.InstanceType)}},
				},
			},
		},
	}
	SetZones(cpms, in.Zones)
	return cpms
}

// TemplateSpec is a providerSpec like the Machines', with another instance type when set.
func TemplateSpec(instanceType string) *runtime.RawExtension {
	raw := ZoneSpec('a')
	if instanceType == "" {
		return raw
	}
	var spec map[string]any
	_ = json.Unmarshal(raw.Raw, &spec)
	spec["instanceType"] = instanceType
	b, _ := json.Marshal(spec)
	return &runtime.RawExtension{Raw: b}
}

// SetZones sets the ControlPlaneMachineSet's AWS failure domains by letter.
func SetZones(cpms *machinev1.ControlPlaneMachineSet, zones string) {
	tmpl := cpms.Spec.Template.OpenShiftMachineV1Beta1Machine
	if zones == "" {
		tmpl.FailureDomains = nil
		return
	}
	var fds []machinev1.AWSFailureDomain
	for i := range len(zones) {
		z := Zone(zones[i])
		fds = append(fds, machinev1.AWSFailureDomain{
			Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: z},
			Subnet:    &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType, ID: ptr.To("subnet-" + z)},
		})
	}
	tmpl.FailureDomains = &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &fds}
}

// UpdateCPMS applies change to the ControlPlaneMachineSet, retrying on conflict.
func UpdateCPMS(ctx context.Context, c *framework.Cluster, change func(*machinev1.ControlPlaneMachineSet)) error {
	// Long enough to ride out an apiserver restart onto new etcd endpoints.
	return framework.WaitFor(ctx, 90*time.Second, "ControlPlaneMachineSet update", func() (bool, error) {
		cpms, err := GetCPMS(ctx, c)
		if err != nil {
			return false, err
		}
		change(cpms)
		err = c.Client.Update(ctx, cpms)
		return err == nil, err
	})
}

// GetCPMS reads the ControlPlaneMachineSet.
func GetCPMS(ctx context.Context, c *framework.Cluster) (*machinev1.ControlPlaneMachineSet, error) {
	cpms := &machinev1.ControlPlaneMachineSet{}
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: framework.MachineNamespace, Name: masters.CPMSName}, cpms)
	return cpms, err
}

// DeleteCPMS deletes the ControlPlaneMachineSet and waits until it is gone.
func DeleteCPMS(ctx context.Context, c *framework.Cluster) error {
	cpms := &machinev1.ControlPlaneMachineSet{ObjectMeta: metav1.ObjectMeta{Name: masters.CPMSName, Namespace: framework.MachineNamespace}}
	if err := c.Client.Delete(ctx, cpms); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return framework.WaitFor(ctx, 10*time.Second, "ControlPlaneMachineSet to go", func() (bool, error) {
		_, err := GetCPMS(ctx, c)
		return apierrors.IsNotFound(err), nil
	})
}

// WaitCPMSCondition waits until the condition has the status and reason, and returns it.
func WaitCPMSCondition(ctx context.Context, c *framework.Cluster, timeout time.Duration, typ string, status metav1.ConditionStatus, reason string) (*metav1.Condition, error) {
	var last *metav1.Condition
	err := framework.WaitFor(ctx, timeout, fmt.Sprintf("%s=%s/%s", typ, status, reason), func() (bool, error) {
		cpms, err := GetCPMS(ctx, c)
		if err != nil {
			return false, err
		}
		last = meta.FindStatusCondition(cpms.Status.Conditions, typ)
		return last != nil && last.Status == status && last.Reason == reason && last.ObservedGeneration == cpms.Generation, nil
	})
	if err != nil && last != nil {
		err = fmt.Errorf("%w; last %s=%s/%s: %s", err, typ, last.Status, last.Reason, last.Message)
	}
	return last, err
}

// Placed is one control-plane Machine as the layout shows it.
type Placed struct {
	Name, Zone, Phase, Instance string
	UID                         types.UID
	Index                       int
	Deleting, Voting            bool
	// Hooked says the Machine carries quorumguard's preDrain hook.
	Hooked bool
}

// Layout lists the control-plane Machines, by index then name.
func Layout(ctx context.Context, c *framework.Cluster) ([]Placed, error) {
	var list machinev1beta1.MachineList
	if err := c.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace), client.MatchingLabels{framework.RoleLabel: "master"}); err != nil {
		return nil, err
	}
	out := make([]Placed, 0, len(list.Items))
	for i := range list.Items {
		m := &list.Items[i]
		p := Placed{Name: m.Name, UID: m.UID, Phase: framework.Phase(m), Deleting: m.DeletionTimestamp != nil, Hooked: hooks.Has(m, hooks.Default)}
		var err error
		if p.Index, err = failuredomain.IndexOf(m.Name); err != nil {
			p.Index, _ = strconv.Atoi(m.Annotations[failuredomain.IndexAnnotation]) // adopted
		}
		if cond := framework.Condition(m, masters.ConditionType); cond != nil {
			p.Voting = cond.Reason == quorum.ReasonVoting
		}
		var spec struct {
			InstanceType string `json:"instanceType"`
			Placement    struct {
				AvailabilityZone string `json:"availabilityZone"`
			} `json:"placement"`
		}
		if v := m.Spec.ProviderSpec.Value; v != nil {
			_ = json.Unmarshal(v.Raw, &spec)
		}
		p.Zone, p.Instance = spec.Placement.AvailabilityZone, spec.InstanceType
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Placed) int {
		if a.Index != b.Index {
			return a.Index - b.Index
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// Settled says whether the layout is exactly one Running, voting Machine per index, in the
// zones named by letter (zones[i] for index i) and, when set, with the instance type.
func Settled(layout []Placed, zones, instance string) bool {
	if len(layout) != len(zones) {
		return false
	}
	for i, p := range layout {
		if p.Index != i || p.Deleting || p.Phase != framework.PhaseRunning || !p.Voting || p.Zone != Zone(zones[i]) ||
			(instance != "" && p.Instance != instance) {
			return false
		}
	}
	return true
}

// LayoutString renders a layout for messages.
func LayoutString(layout []Placed) string {
	parts := make([]string, len(layout))
	for i, p := range layout {
		flags := p.Phase
		if p.Deleting {
			flags += ",deleting"
		}
		if p.Voting {
			flags += ",voting"
		}
		parts[i] = fmt.Sprintf("%s[%s %s %s]", p.Name, p.Zone, p.Instance, flags)
	}
	return strings.Join(parts, " ")
}

// MachineWatch samples the control-plane Machines every 100 ms: the most that existed at
// once, the most indexes being replaced at once (with more than one Machine, or a deleting
// one), the order Machines appeared and were deleted in, the CPMS Progressing messages, and
// every moment a Machine was seen to lose the quorum hook it had (released, or gone).
type MachineWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	report      WatchReport
	seen        map[string]bool
	seenDeleted map[string]bool
	hooked      map[string]bool
}

// WatchReport is what a MachineWatch saw.
type WatchReport struct {
	MaxMachines, MaxReplacing int
	// MaxUpdated is the most status.updatedReplicas the ControlPlaneMachineSet showed.
	MaxUpdated       int32
	Created, Deleted []string
	Progressing      []string
	Releases         []HookRelease
}

// WatchMachines starts sampling; the Machines that exist now are not reported as created.
func WatchMachines(ctx context.Context, c *framework.Cluster) *MachineWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &MachineWatch{cancel: cancel, done: make(chan struct{}), seen: map[string]bool{}, seenDeleted: map[string]bool{}, hooked: map[string]bool{}}
	if layout, err := Layout(ctx, c); err == nil {
		for _, p := range layout {
			w.seen[p.Name] = true
			w.hooked[p.Name] = p.Hooked
		}
	}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			w.sample(ctx, c)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return w
}

func (w *MachineWatch) sample(ctx context.Context, c *framework.Cluster) {
	layout, err := Layout(ctx, c)
	if err != nil {
		return
	}
	var progressing string
	var updated int32
	if cpms, err := GetCPMS(ctx, c); err == nil {
		updated = cpms.Status.UpdatedReplicas
		if cond := meta.FindStatusCondition(cpms.Status.Conditions, "Progressing"); cond != nil {
			progressing = cond.Reason + ": " + cond.Message
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &w.report
	r.MaxMachines = max(r.MaxMachines, len(layout))
	r.MaxUpdated = max(r.MaxUpdated, updated)
	perIndex := map[int]int{}
	replacing := map[int]bool{}
	for _, p := range layout {
		perIndex[p.Index]++
		if perIndex[p.Index] > 1 || p.Deleting {
			replacing[p.Index] = true
		}
		if !w.seen[p.Name] {
			w.seen[p.Name] = true
			r.Created = append(r.Created, p.Name)
		}
		if p.Deleting && !w.seenDeleted[p.Name] {
			w.seenDeleted[p.Name] = true
			r.Deleted = append(r.Deleted, p.Name)
		}
	}
	r.MaxReplacing = max(r.MaxReplacing, len(replacing))
	now, present := time.Now(), map[string]bool{}
	for _, p := range layout {
		present[p.Name] = true
		if !p.Hooked && w.hooked[p.Name] {
			r.Releases = append(r.Releases, HookRelease{At: now, Machine: p.Name})
		}
		w.hooked[p.Name] = p.Hooked
	}
	for name, had := range w.hooked {
		if !present[name] {
			if had {
				r.Releases = append(r.Releases, HookRelease{At: now, Machine: name})
			}
			delete(w.hooked, name)
		}
	}
	if progressing != "" && (len(r.Progressing) == 0 || r.Progressing[len(r.Progressing)-1] != progressing) {
		r.Progressing = append(r.Progressing, progressing)
	}
}

// Stop stops sampling and returns the report.
func (w *MachineWatch) Stop() WatchReport {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.report
}

// RolloutInput describes one change the Machine controller must carry out.
type RolloutInput struct {
	Cluster *framework.Cluster
	// Change edits the ControlPlaneMachineSet; Act runs after it (to delete a Machine, say).
	// Either may be nil.
	Change func(*machinev1.ControlPlaneMachineSet)
	Act    func(ctx context.Context) error
	// Zones is where index i must end, by letter; Instance, when set, the instance type
	// every Machine must end with.
	Zones, Instance string
	// Replaced are the indexes whose Machines must be replaced; the others must stay.
	Replaced []int
	Timeout  time.Duration
	// Replicas is the ControlPlaneMachineSet's; 3 when zero.
	Replicas int
	// EndProgressing, when set, is the reason Progressing shows True at the end (OnDelete
	// with a Machine still to replace, say); by default it is False, AllReplicasUpdated.
	EndProgressing string
}

// RolloutResult is what a rollout measured.
type RolloutResult struct {
	Writer  framework.WriterReport
	Monitor framework.MonitorReport
	Watch   WatchReport
	Layout  []Placed
	Took    time.Duration
}

// RolloutSpec makes a change and checks that the controller carries it out through
// protected replacements: the layout ends as wanted with the right Machines replaced, each
// new Machine's learner added and promoted and each old Machine's member removed and its
// hook released (their events), never more than 4 Machines and 1 learner at once, one
// index replaced at a time, voting members never below 3, no write lost and quorum never
// lost, status.updatedReplicas never above 3. It ends once the ControlPlaneMachineSet
// reports Progressing False (or EndProgressing).
func RolloutSpec(ctx context.Context, in RolloutInput) (RolloutResult, error) {
	var res RolloutResult
	c := in.Cluster
	if in.Timeout == 0 {
		in.Timeout = 2 * time.Minute
	}
	before, err := Layout(ctx, c)
	if err != nil {
		return res, err
	}
	g, err := StartGuards(ctx, c)
	if err != nil {
		return res, err
	}
	watch := WatchMachines(ctx, c)
	start := time.Now()
	var stepErr error
	if in.Change != nil {
		stepErr = UpdateCPMS(ctx, c, in.Change)
	}
	if stepErr == nil && in.Act != nil {
		stepErr = in.Act(ctx)
	}
	if stepErr == nil {
		stepErr = framework.WaitFor(ctx, in.Timeout, "layout "+in.Zones, func() (bool, error) {
			res.Layout, err = Layout(ctx, c)
			return err == nil && Settled(res.Layout, in.Zones, in.Instance), err
		})
	}
	if stepErr == nil {
		status, reason := metav1.ConditionFalse, machines.ReasonAllReplicasUpdated
		if in.EndProgressing != "" {
			status, reason = metav1.ConditionTrue, in.EndProgressing
		}
		_, stepErr = WaitCPMSCondition(ctx, c, 30*time.Second, "Progressing", status, reason)
	}
	res.Took = time.Since(start)
	res.Watch = watch.Stop()
	n := in.Replicas
	if n == 0 {
		n = 3
	}
	res.Writer, res.Monitor, err = g.Check(ctx, n)
	if stepErr != nil {
		return res, fmt.Errorf("%w (layout: %s; watch: %+v)", stepErr, LayoutString(res.Layout), res.Watch)
	}
	if err != nil {
		return res, err
	}
	var problems []string
	if res.Watch.MaxMachines > n+1 {
		problems = append(problems, fmt.Sprintf("%d Machines existed at once, want at most %d", res.Watch.MaxMachines, n+1))
	}
	if int(res.Watch.MaxUpdated) > n {
		problems = append(problems, fmt.Sprintf("status.updatedReplicas reached %d for %d replicas", res.Watch.MaxUpdated, n))
	}
	if res.Watch.MaxReplacing > 1 {
		problems = append(problems, fmt.Sprintf("%d indexes were replaced at once, want 1", res.Watch.MaxReplacing))
	}
	if res.Monitor.MaxMembers > n+1 {
		problems = append(problems, fmt.Sprintf("%d etcd members existed at once, want at most %d (one replacement at a time)", res.Monitor.MaxMembers, n+1))
	}
	for _, p := range before {
		now := slices.IndexFunc(res.Layout, func(q Placed) bool { return q.Name == p.Name })
		switch replaced := slices.Contains(in.Replaced, p.Index); {
		case replaced && now >= 0:
			problems = append(problems, fmt.Sprintf("Machine %s (index %d) was not replaced", p.Name, p.Index))
		case !replaced && now < 0:
			problems = append(problems, fmt.Sprintf("Machine %s (index %d) was replaced, want it left alone", p.Name, p.Index))
		case replaced:
			// The old Machine went through the protected removal.
			problems = append(problems, missingEvents(ctx, c, p, "MemberRemoved", quorum.ReasonHookReleased)...)
		}
	}
	for _, p := range res.Layout {
		if slices.Contains(res.Watch.Created, p.Name) {
			problems = append(problems, missingEvents(ctx, c, p, "LearnerAdded", "LearnerPromoted")...)
		}
	}
	if len(problems) > 0 {
		return res, fmt.Errorf("%s (layout: %s; watch: %+v)", strings.Join(problems, "; "), LayoutString(res.Layout), res.Watch)
	}
	return res, nil
}

// EventWait is how long a check waits for an Event to be written: the controllers' recorders
// write Events asynchronously, so one read as an action completes can come before the write.
const EventWait = 30 * time.Second

// missingEvents lists the event reasons, of those wanted, that the Machine has not got within
// EventWait.
func missingEvents(ctx context.Context, c *framework.Cluster, p Placed, reasons ...string) []string {
	var out []string
	_ = framework.WaitFor(ctx, EventWait, "the Machine's Events", func() (bool, error) {
		var list corev1.EventList
		if err := c.Client.List(ctx, &list, client.InNamespace(framework.MachineNamespace)); err != nil {
			out = []string{fmt.Sprintf("list events: %v", err)}
			return false, nil
		}
		out = nil
		for _, r := range reasons {
			if !slices.ContainsFunc(list.Items, func(e corev1.Event) bool { return e.InvolvedObject.UID == p.UID && e.Reason == r }) {
				out = append(out, fmt.Sprintf("Machine %s has no %s event", p.Name, r))
			}
		}
		return len(out) == 0, nil
	})
	return out
}

// UntouchedSpec checks for the given time that no control-plane Machine is created or
// deleted.
func UntouchedSpec(ctx context.Context, c *framework.Cluster, d time.Duration) error {
	before, err := Layout(ctx, c)
	if err != nil {
		return err
	}
	watch := WatchMachines(ctx, c)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	r := watch.Stop()
	after, err := Layout(ctx, c)
	if err != nil {
		return err
	}
	names := func(l []Placed) string {
		var out []string
		for _, p := range l {
			if p.Deleting {
				out = append(out, p.Name+"(deleting)")
			} else {
				out = append(out, p.Name)
			}
		}
		return strings.Join(out, " ")
	}
	if len(r.Created) > 0 || names(before) != names(after) {
		return fmt.Errorf("the Machines changed: before %s, after %s, created %v, deleted %v", names(before), names(after), r.Created, r.Deleted)
	}
	return nil
}
