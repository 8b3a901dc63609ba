package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/quorumguard/quorumguard/pkg/failuredomain"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/test/framework"
)

// manifestDir is the repository's manifests/, from this package's directory.
var manifestDir = filepath.Join("..", "..", "manifests")

// manifest is one object from manifests/, with the file it came from.
type manifest struct {
	file string
	obj  *unstructured.Unstructured
}

func loadManifests(t *testing.T) []manifest {
	t.Helper()
	ms, err := framework.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]manifest, len(ms))
	for i, m := range ms {
		out[i] = manifest{file: m.File, obj: m.Obj}
	}
	return out
}

// one returns the only object of kind (and name, when given), converted into into.
func one[T runtime.Object](t *testing.T, ms []manifest, kind, name string, into T) T {
	t.Helper()
	var found []manifest
	for _, m := range ms {
		if m.obj.GetKind() == kind && (name == "" || m.obj.GetName() == name) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q in manifests/, found %d", kind, name, len(found))
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(found[0].obj.Object, into, true); err != nil {
		t.Fatalf("%s %s in %s: %v", kind, found[0].obj.GetName(), found[0].file, err)
	}
	return into
}

// controllerFlags is the flag set the controller parses: the root command's.
func controllerFlags() (*pflag.FlagSet, *options) {
	root, c := newCLI(context.Background(), io.Discard)
	fs := root.Flags()
	fs.SetOutput(io.Discard)
	return fs, &c.o
}

func deployment(t *testing.T, ms []manifest) (*appsv1.Deployment, *corev1.Container, *options, *pflag.FlagSet) {
	t.Helper()
	d := one(t, ms, "Deployment", "quorumguard", &appsv1.Deployment{})
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(d.Spec.Template.Spec.Containers))
	}
	c := &d.Spec.Template.Spec.Containers[0]
	fs, o := controllerFlags()
	if err := fs.Parse(c.Args); err != nil {
		t.Fatalf("the Deployment's args do not parse with the binary's flags: %v", err)
	}
	return d, c, o, fs
}

func TestManifestsDeploymentArgsAreTheBinarysFlags(t *testing.T) {
	ms := loadManifests(t)
	_, c, o, fs := deployment(t, ms)
	for _, a := range c.Args {
		name, _, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Errorf("arg %q is not in the --flag=value form", a)
			continue
		}
		if fs.Lookup(name) == nil {
			t.Errorf("arg %q names no flag of the binary", a)
		}
	}
	if fs.NArg() != 0 {
		t.Errorf("the Deployment passes positional args %q", fs.Args())
	}
	if err := o.validate(); err != nil {
		t.Errorf("the Deployment's args are refused by the binary: %v", err)
	}
	for _, e := range c.Env {
		if rest, ok := strings.CutPrefix(e.Name, "QUORUMGUARD_"); ok {
			if fs.Lookup(strings.ToLower(strings.ReplaceAll(rest, "_", "-"))) == nil {
				t.Errorf("env %s names no flag of the binary", e.Name)
			}
		}
	}
	podName := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	})
	if o.leaderElect == "for-life" && podName < 0 {
		t.Error("leader-for-life needs POD_NAME from the downward API (metadata.name)")
	}
}

func TestManifestsAgreeWithTheCodeAndEachOther(t *testing.T) {
	ms := loadManifests(t)
	d, c, o, _ := deployment(t, ms)
	ns := one(t, ms, "Namespace", "", &corev1.Namespace{})
	sa := one(t, ms, "ServiceAccount", "", &corev1.ServiceAccount{})
	pod := d.Spec.Template.Spec

	check := func(ok bool, format string, args ...any) {
		t.Helper()
		if !ok {
			t.Errorf(format, args...)
		}
	}
	check(d.Namespace == ns.Name && sa.Namespace == ns.Name, "Deployment (%s) and ServiceAccount (%s) are not in the Namespace %s", d.Namespace, sa.Namespace, ns.Name)
	check(pod.ServiceAccountName == sa.Name, "the Pod runs as %q, not the ServiceAccount %q", pod.ServiceAccountName, sa.Name)
	check(d.Spec.Replicas != nil && *d.Spec.Replicas == 2, "want 2 replicas")
	check(pod.PriorityClassName == "system-cluster-critical", "priorityClassName is %q", pod.PriorityClassName)
	_, onMasters := pod.NodeSelector["node-role.kubernetes.io/master"]
	check(onMasters, "the Pod is not confined to control-plane Nodes: %v", pod.NodeSelector)
	check(slices.ContainsFunc(pod.Tolerations, func(tl corev1.Toleration) bool { return tl.Key == "node-role.kubernetes.io/master" }),
		"the Pod does not tolerate the control-plane taint")
	check(o.electionNS == "", "--leader-election-namespace should be left to the service-account namespace")

	// Probes and metrics are served where the flags say.
	portOf := func(addr string) string {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("address %q: %v", addr, err)
		}
		return p
	}
	containerPort := func(name string) string {
		for _, p := range c.Ports {
			if p.Name == name {
				return strconv.Itoa(int(p.ContainerPort))
			}
		}
		return ""
	}
	check(containerPort("probes") == portOf(o.probeAddr), "port probes %s is not --health-probe-bind-address %s", containerPort("probes"), o.probeAddr)
	check(containerPort("metrics") == portOf(o.metricsAddr), "port metrics %s is not --metrics-bind-address %s", containerPort("metrics"), o.metricsAddr)
	check(c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path == "/healthz" && c.LivenessProbe.HTTPGet.Port.String() == "probes",
		"liveness must be GET /healthz on the probe port")
	check(c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path == "/readyz" && c.ReadinessProbe.HTTPGet.Port.String() == "probes",
		"readiness must be GET /readyz on the probe port")
	check(c.Resources.Requests.Cpu() != nil && !c.Resources.Requests.Cpu().IsZero() && !c.Resources.Limits.Memory().IsZero(), "resource requests and limits are missing")
	sc := c.SecurityContext
	check(sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot &&
		sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "the container must run non-root on a read-only root filesystem without privilege escalation")

	// The etcd client files come from the mounted Secret.
	for flagName, file := range map[string]string{"--etcd-ca-file": o.etcdCA, "--etcd-cert-file": o.etcdCert, "--etcd-key-file": o.etcdKey} {
		mounted := false
		for _, vm := range c.VolumeMounts {
			v := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name && v.Secret != nil })
			if v >= 0 && filepath.Dir(file) == filepath.Clean(vm.MountPath) {
				mounted = true
			}
		}
		check(mounted, "%s %s is not in a mounted Secret", flagName, file)
	}

	// The ClusterOperator, its RBAC and the hook owner name the same operator.
	co := one(t, ms, "ClusterOperator", "", &configv1.ClusterOperator{})
	check(co.Name == o.clusterOperator, "ClusterOperator %s is not --cluster-operator %s", co.Name, o.clusterOperator)
	check(o.hookOwner == "clusteroperator/"+o.clusterOperator, "--hook-owner %s does not name ClusterOperator %s", o.hookOwner, o.clusterOperator)

	cr := one(t, ms, "ClusterRole", "", &rbacv1.ClusterRole{})
	check(ruleNames(cr.Rules, "config.openshift.io", "clusteroperators/status", "patch") == o.clusterOperator,
		"clusteroperators/status patch is not limited to %s", o.clusterOperator)

	// The Machines' Role is in --machine-namespace, the leader's in the Pod's namespace with
	// the lock's names.
	machineRole := one(t, ms, "Role", "quorumguard", &rbacv1.Role{})
	check(machineRole.Namespace == o.namespace, "the Machines' Role is in %s, not --machine-namespace %s", machineRole.Namespace, o.namespace)
	leaderRole := one(t, ms, "Role", "quorumguard-leader", &rbacv1.Role{})
	check(leaderRole.Namespace == ns.Name, "the leader Role is in %s, not %s", leaderRole.Namespace, ns.Name)
	check(ruleNames(leaderRole.Rules, "", "configmaps", "update") == o.electionID+"-epoch,"+o.endpointsCM,
		"configmap update is not limited to the epoch %s-epoch and the published endpoints %s", o.electionID, o.endpointsCM)
	check(ruleNames(leaderRole.Rules, "", "configmaps", "delete") == o.electionID, "configmap delete is not limited to the lock %s", o.electionID)
	for _, obj := range []struct {
		kind    string
		subject []rbacv1.Subject
	}{
		{"ClusterRoleBinding", one(t, ms, "ClusterRoleBinding", "", &rbacv1.ClusterRoleBinding{}).Subjects},
		{"RoleBinding quorumguard", one(t, ms, "RoleBinding", "quorumguard", &rbacv1.RoleBinding{}).Subjects},
		{"RoleBinding quorumguard-leader", one(t, ms, "RoleBinding", "quorumguard-leader", &rbacv1.RoleBinding{}).Subjects},
	} {
		check(len(obj.subject) == 1 && obj.subject[0].Kind == "ServiceAccount" && obj.subject[0].Name == sa.Name && obj.subject[0].Namespace == ns.Name,
			"%s does not bind the ServiceAccount %s/%s: %+v", obj.kind, ns.Name, sa.Name, obj.subject)
	}

	// The MachineHealthCheck is one quorumguard accepts, over the control-plane Machines.
	mhc := one(t, ms, "MachineHealthCheck", "", &machinev1beta1.MachineHealthCheck{})
	check(mhc.Namespace == o.namespace, "the MachineHealthCheck is in %s, not %s", mhc.Namespace, o.namespace)
	verdicts := operatorstatus.CheckMachineHealthChecks([]machinev1beta1.MachineHealthCheck{*mhc},
		[]labels.Set{{operatorstatus.RoleLabel: "master", "machine.openshift.io/cluster-api-machine-type": "master"}}, o.replicas)
	check(len(verdicts) == 1 && verdicts[0].Safe && mhc.Spec.MaxUnhealthy.String() == "1",
		"the MachineHealthCheck must select control-plane Machines with maxUnhealthy 1: %+v", verdicts)

	// The sample ControlPlaneMachineSet is one the failure-domain code reads.
	cpms := one(t, ms, "ControlPlaneMachineSet", "", &machinev1.ControlPlaneMachineSet{})
	check(cpms.Name == "cluster" && cpms.Namespace == o.namespace, "the ControlPlaneMachineSet is %s/%s, want %s/cluster", cpms.Namespace, cpms.Name, o.namespace)
	domains, err := failuredomain.FromControlPlaneMachineSet(cpms)
	check(err == nil && len(domains) == 3 && cpms.Spec.Replicas != nil && *cpms.Spec.Replicas == 3,
		"the sample ControlPlaneMachineSet should have 3 replicas over 3 valid failure domains: %d domains, %v", len(domains), err)
	sel, err := metav1.LabelSelectorAsSelector(&cpms.Spec.Selector)
	check(err == nil && sel.Matches(labels.Set(cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.ObjectMeta.Labels)),
		"the ControlPlaneMachineSet's selector does not match its template's labels")
}

// ruleNames returns, joined by commas, the resourceNames of the rules granting verb on
// resource in group; "" when a rule grants it without names.
func ruleNames(rules []rbacv1.PolicyRule, group, resource, verb string) string {
	var names []string
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			if len(r.ResourceNames) == 0 {
				return ""
			}
			names = append(names, r.ResourceNames...)
		}
	}
	return strings.Join(names, ",")
}

func TestManifestsRBACIsLeastPrivilege(t *testing.T) {
	ms := loadManifests(t)
	for _, m := range ms {
		var rules []rbacv1.PolicyRule
		switch m.obj.GetKind() {
		case "ClusterRole":
			rules = one(t, ms, "ClusterRole", m.obj.GetName(), &rbacv1.ClusterRole{}).Rules
		case "Role":
			rules = one(t, ms, "Role", m.obj.GetName(), &rbacv1.Role{}).Rules
		default:
			continue
		}
		for _, r := range rules {
			for _, field := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
				if slices.Contains(field, "*") {
					t.Errorf("%s %s: a wildcard in %+v", m.obj.GetKind(), m.obj.GetName(), r)
				}
			}
			if slices.Contains(r.Resources, "secrets") {
				t.Errorf("%s %s grants access to Secrets", m.obj.GetKind(), m.obj.GetName())
			}
			if slices.Contains(r.Verbs, "escalate") || slices.Contains(r.Verbs, "bind") || slices.Contains(r.Verbs, "impersonate") {
				t.Errorf("%s %s grants %v", m.obj.GetKind(), m.obj.GetName(), r.Verbs)
			}
		}
	}

	// Every rule carries a comment that says why each of its verbs is needed.
	raw, err := os.ReadFile(filepath.Join(manifestDir, "02-rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	ruleStart := regexp.MustCompile(`^\s*- apiGroups:`)
	verbsLine := regexp.MustCompile(`^\s*verbs:\s*\[(.*)\]`)
	start := -1
	for i, l := range lines {
		if ruleStart.MatchString(l) {
			start = i
		}
		mm := verbsLine.FindStringSubmatch(l)
		if mm == nil || start < 0 {
			continue
		}
		var comment strings.Builder
		for _, cl := range lines[start:i] {
			if c, ok := strings.CutPrefix(strings.TrimSpace(cl), "#"); ok {
				comment.WriteString(c + " ")
			}
		}
		for _, v := range strings.Split(mm[1], ",") {
			v = strings.Trim(strings.TrimSpace(v), `"`)
			if !regexp.MustCompile(`\b` + v + `\b`).MatchString(comment.String()) {
				t.Errorf("02-rbac.yaml line %d: verb %q has no justification in the rule's comment", i+1, v)
			}
		}
	}
}
