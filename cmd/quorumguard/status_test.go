package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/hooks"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/test/e2e"
	"github.com/quorumguard/quorumguard/test/framework"
)

// The control plane is started only by the tests that need it.
var (
	cpOnce sync.Once
	cp     *framework.ControlPlane
	cpErr  error
)

func controlPlane(t *testing.T) *framework.ControlPlane {
	t.Helper()
	cpOnce.Do(func() { cp, cpErr = framework.StartControlPlane(framework.ControlPlaneOptions{}) })
	if cpErr != nil {
		t.Fatal(cpErr)
	}
	return cp
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cp != nil {
		_ = cp.Stop()
	}
	os.Exit(code)
}

func TestStatusCommandFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"an unknown output format", []string{"-o", "yaml", "--etcd-ca-file=a", "--etcd-cert-file=b", "--etcd-key-file=c"}, nil, "-o must be table or json"},
		{"the etcd client files are required", []string{"-o", "json"}, nil, "--etcd-ca-file, --etcd-cert-file and --etcd-key-file are all required"},
		{"a controller-only flag is refused", []string{"--leader-elect=none"}, nil, "unknown flag: --leader-elect"},
		{"arguments are refused", []string{"now"}, nil, "status takes no arguments"},
		{"an unknown flag is refused", []string{"--bogus"}, nil, "unknown flag: --bogus"},
		{"flags come from the environment too", nil, map[string]string{"QUORUMGUARD_OUTPUT": "xml", "QUORUMGUARD_ETCD_CA_FILE": "a",
			"QUORUMGUARD_ETCD_CERT_FILE": "b", "QUORUMGUARD_ETCD_KEY_FILE": "c"}, "-o must be table or json, not \"xml\""},
	}
	// The binary hands `status` and what follows to the status command.
	if err := execute(t.Context(), []string{"status", "--bogus"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--bogus") {
		t.Errorf("quorumguard status --bogus = %v; want the status command's flag error", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			err := statusCommand(t.Context(), tc.args, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("status %v = %v, want an error containing %q", tc.args, err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q on a refused command", out.String())
			}
		})
	}
}

// TestStatusCommand runs `quorumguard status` against a running cluster and controller,
// idle and then with a Machine being deleted, in both formats.
func TestStatusCommand(t *testing.T) {
	ctx := t.Context()
	c, err := framework.StartCluster(ctx, controlPlane(t), framework.ClusterOptions{Dir: t.TempDir(), ProvisionDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	cpms := e2e.NewCPMS(c, e2e.CPMSInput{Zones: "abc"})
	if err := c.Client.Create(ctx, cpms); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.Delete(context.Background(), cpms) })
	unsafe := &machinev1beta1.MachineHealthCheck{
		ObjectMeta: metav1.ObjectMeta{Name: "masters-unlimited", Namespace: framework.MachineNamespace},
		Spec:       machinev1beta1.MachineHealthCheckSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{masters.RoleLabel: "master"}}},
	}
	if err := c.Client.Create(ctx, unsafe); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.Delete(context.Background(), unsafe) })

	coName := "etcd-status-command"
	o := e2e.ControllerOptions(c)
	o.ClusterOperator, o.HookHeldThreshold = coName, 30*time.Minute
	stop := startController(t, c, o)
	defer stop()
	t.Cleanup(func() {
		_ = c.Client.Delete(context.Background(), &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: coName}})
	})
	waitFor(t, "hooks, Voting conditions and the ClusterOperator", func() bool {
		for i := range 3 {
			m, err := c.Machine(ctx, fmt.Sprintf("cluster-master-%d", i))
			if err != nil || !hooks.Has(m, hooks.Default) || reason(m) != quorum.ReasonVoting {
				return false
			}
		}
		co := &configv1.ClusterOperator{}
		return c.Client.Get(ctx, client.ObjectKey{Name: coName}, co) == nil && len(co.Status.Conditions) > 0
	})

	ca, cert, key := c.Net.ClientFiles()
	args := []string{"--kubeconfig", c.CP.KubeconfigFile, "--etcd-ca-file", ca, "--etcd-cert-file", cert, "--etcd-key-file", key,
		"--cluster-operator", coName}
	// statusCode runs the command and returns what it printed and its exit code.
	statusCode := func(extra ...string) (string, int) {
		t.Helper()
		var out bytes.Buffer
		err := statusCommand(ctx, append(append([]string{}, args...), extra...), &out)
		var ee *exitError
		switch {
		case err == nil:
			return out.String(), 0
		case errors.As(err, &ee):
			return out.String(), ee.code
		default:
			t.Fatalf("status %v: %v", extra, err)
			return "", exitFailed
		}
	}
	status := func(extra ...string) string {
		t.Helper()
		table, code := statusCode(extra...)
		if code != 0 {
			t.Fatalf("status %v exited %d on a healthy cluster:\n%s", extra, code, table)
		}
		return table
	}

	table := status()
	t.Logf("quorumguard status:\n%s", table)
	mustContain(t, table,
		"ETCD MEMBERS (desired voting members: 3)",
		"ID", "NAME", "MACHINE", "ROLE", "HEALTH", "RAFT INDEX", "LEADER",
		"CONTROL-PLANE MACHINES in openshift-machine-api",
		"CLUSTEROPERATOR "+coName, "Available", "EtcdQuorate",
		"MACHINEHEALTHCHECKS", "masters-unlimited",
		"NEXT STEP: nothing to do", "FAULT TOLERANCE: 1")
	for i := range 3 {
		name := fmt.Sprintf("cluster-master-%d", i)
		// The member's row (it starts with its ID) and the Machine's.
		mustMatchLine(t, table, "", " "+name+" ", "voter", "healthy")
		mustMatchLine(t, table, name+" ", "Running", "us-east-1a", "yes", "Voting")
	}

	// JSON holds the same.
	var rep operatorstatus.Report
	if err := json.Unmarshal([]byte(status("-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	leaders, voters := 0, 0
	for _, m := range rep.Members {
		if m.Leader {
			leaders++
		}
		if m.Role == "voter" && m.Health == "healthy" && m.RaftIndex > 0 && strings.HasPrefix(m.Machine, "cluster-master-") {
			voters++
		}
	}
	if leaders != 1 || voters != 3 || rep.Desired != 3 || rep.EtcdError != "" {
		t.Errorf("JSON members %+v (desired %d, etcd error %q); want 3 healthy voters, one leader", rep.Members, rep.Desired, rep.EtcdError)
	}
	if len(rep.Machines) != 3 || rep.Machines[0].FailureDomain != "us-east-1a" || !rep.Machines[0].Hook || rep.Machines[0].EtcdMember != quorum.ReasonVoting {
		t.Errorf("JSON machines %+v", rep.Machines)
	}
	if rep.ClusterOperator == nil || len(rep.ClusterOperator.Conditions) != 4 {
		t.Errorf("JSON ClusterOperator %+v; want its four conditions", rep.ClusterOperator)
	}
	if len(rep.MachineHealthChecks) != 1 || rep.MachineHealthChecks[0].Safe {
		t.Errorf("JSON MachineHealthChecks %+v; want masters-unlimited judged unsafe", rep.MachineHealthChecks)
	}
	if rep.Next.Action != string(quorum.None) || rep.Next.FaultTolerance != 1 {
		t.Errorf("JSON next step %+v", rep.Next)
	}

	// A Machine deleted with no replacement yet: the hook holds it and the planner waits.
	if err := c.DeleteMachine(ctx, "cluster-master-0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cluster-master-0 to wait for its replacement and the ClusterOperator to say so", func() bool {
		m, err := c.Machine(ctx, "cluster-master-0")
		if err != nil || reason(m) != quorum.ReasonWaitingForReplacement {
			return false
		}
		co := &configv1.ClusterOperator{}
		if c.Client.Get(ctx, client.ObjectKey{Name: coName}, co) != nil {
			return false
		}
		for _, cond := range co.Status.Conditions {
			if cond.Type == configv1.OperatorProgressing && cond.Status == configv1.ConditionTrue {
				return true
			}
		}
		return false
	})
	table = status()
	t.Logf("quorumguard status with a Machine deleted:\n%s", table)
	mustMatchLine(t, table, "cluster-master-0 ", "Deleting", "yes", quorum.ReasonWaitingForReplacement)
	// The next step is the wait, not "nothing to do".
	mustMatchLine(t, table, "NEXT STEP: wait: Machine cluster-master-0 ("+quorum.ReasonWaitingForReplacement+")", "waiting for a replacement Machine")
	mustMatchLine(t, table, "Progressing ", "True", operatorstatus.ReasonReplacementInProgress, "cluster-master-0")
	mustMatchLine(t, table, "Upgradeable ", "False", operatorstatus.ReasonReplacementInProgress)

	// Nothing was changed by the command: the Machine still holds its hook.
	m, err := c.Machine(ctx, "cluster-master-0")
	if err != nil || !hooks.Has(m, hooks.Default) {
		t.Errorf("cluster-master-0 lost its hook (%v)", err)
	}

	// Then two of three members dead: the survivor still answers for itself, so the command
	// shows the members and says quorum is lost, not that etcd is unreachable.
	// A CA that did not sign etcd's certificates: the report is printed and the command
	// exits 2, etcd not observed.
	wrongCA := append(slices.Clone(args), "--etcd-ca-file", cert)
	var out bytes.Buffer
	var ee *exitError
	if err := statusCommand(ctx, wrongCA, &out); !errors.As(err, &ee) || ee.code != exitEtcdUnobserved || !strings.Contains(out.String(), "etcd could not be observed") {
		t.Errorf("status with a wrong CA = %v, printed:\n%s\nwant exit %d and the report", err, out.String(), exitEtcdUnobserved)
	}

	// One member dead: quorum holds with no margin, exit 3.
	c.Agent.Member("cluster-master-1").Kill()
	waitFor(t, "the command to see one member dead", func() bool {
		_, code := statusCode()
		return code == exitNoMargin
	})

	if _, code := statusCode(); code != exitNoMargin {
		t.Errorf("status with one of three members dead exited %d, want %d", code, exitNoMargin)
	}
	c.Agent.Member("cluster-master-2").Kill()
	table, code := statusCode()
	if code != exitNoMargin {
		t.Errorf("status with quorum lost exited %d, want %d", code, exitNoMargin)
	}
	t.Logf("quorumguard status with two members dead:\n%s", table)
	mustContain(t, table, "etcd has lost quorum; the members are as one member sees them",
		"etcd has no quorum: 0 of 3 voting members are healthy and 2 are needed, 1 answer on their own",
		"NEXT STEP: nothing: etcd has lost quorum")
	for i := range 3 {
		mustMatchLine(t, table, "", fmt.Sprintf(" cluster-master-%d ", i), "voter", "unhealthy")
	}
	if m, err := c.Machine(ctx, "cluster-master-0"); err != nil || !hooks.Has(m, hooks.Default) {
		t.Errorf("cluster-master-0 lost its hook with quorum lost (%v)", err)
	}
}

// startController runs a controller with status reporting, as the binary would.
func startController(t *testing.T, c *framework.Cluster, o app.Options) func() {
	t.Helper()
	a, err := app.New(c.CP.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.EnableStatus(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("controller did not stop")
		}
	}
}

func reason(m *machinev1beta1.Machine) string {
	if c := framework.Condition(m, masters.ConditionType); c != nil {
		return c.Reason
	}
	return ""
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := framework.WaitFor(t.Context(), 60*time.Second, what, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatal(err)
	}
}

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("output lacks %q", sub)
		}
	}
}

// mustMatchLine wants a line that starts with prefix and holds every one of subs.
func mustMatchLine(t *testing.T, s, prefix string, subs ...string) {
	t.Helper()
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(l, sub)
		}
		if all {
			return
		}
	}
	t.Errorf("no line starting with %q holds all of %q", prefix, subs)
}

func TestPrintTableShowsAlarms(t *testing.T) {
	rep := &operatorstatus.Report{Desired: 3, Members: []operatorstatus.MemberReport{
		{ID: "a", Name: "master-0", Machine: "master-0", Role: "voter", Health: "unhealthy", Alarms: []string{"CORRUPT"}},
		{ID: "b", Name: "master-1", Machine: "master-1", Role: "voter", Health: "healthy"},
	}}
	var out strings.Builder
	if err := printTable(&out, rep, ""); err != nil {
		t.Fatal(err)
	}
	mustMatchLine(t, out.String(), "", " master-0 ", "voter", "unhealthy (alarm CORRUPT)")
	mustMatchLine(t, out.String(), "", " master-1 ", "voter", "healthy")
}
