// Package alerts_test checks manifests/monitoring/prometheusrule.yaml: its rule groups, taken
// from the PrometheusRule's spec, pass `promtool check rules`; the unit tests in testdata/
// pass `promtool test rules`; every alert has a runbook and fires and stays silent in those
// tests; every metric the rules name is one the controller exports; and the unit tests fail
// when any alert's expression is broken.
package alerts_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	"k8s.io/utils/ptr"

	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
	"github.com/quorumguard/quorumguard/pkg/quorum"
	"github.com/quorumguard/quorumguard/pkg/snapshot"
)

const (
	ruleFile     = "manifests/monitoring/prometheusrule.yaml"
	unitTests    = "testdata/quorumguard_test.yaml"
	rulesInTests = "quorumguard.rules.yaml" // the rule_files entry of the unit tests
	runbookURL   = "https://github.com/quorumguard/quorumguard/blob/main/docs/runbooks/"
)

// repoRoot is the repository, from this package's directory.
var repoRoot = filepath.Join("..", "..")

type rule map[string]any

type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

// readRules returns the PrometheusRule's spec, which is a Prometheus rule file.
func readRules(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, ruleFile))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.UnmarshalStrict(raw, &obj); err != nil {
		t.Fatalf("%s: %v", ruleFile, err)
	}
	if obj["apiVersion"] != "monitoring.coreos.com/v1" || obj["kind"] != "PrometheusRule" {
		t.Fatalf("%s is a %v %v, want a monitoring.coreos.com/v1 PrometheusRule", ruleFile, obj["apiVersion"], obj["kind"])
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		t.Fatalf("%s has no spec", ruleFile)
	}
	return spec
}

func alerts(t *testing.T, spec map[string]any) []rule {
	t.Helper()
	b, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var g ruleGroups
	if err := yaml.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, grp := range g.Groups {
		for _, r := range grp.Rules {
			if _, ok := r["alert"]; ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// promtool is bin/promtool, built by `make tools`.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(repoRoot, "bin", "promtool"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run `make tools` (it builds promtool from hack/tools/promtool)", p)
	}
	return p
}

// runUnitTests writes spec as the rule file beside a copy of the unit tests and runs
// `promtool test rules`; it returns promtool's output and whether the tests passed.
func runUnitTests(t *testing.T, spec map[string]any) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	rules, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, rulesInTests), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(unitTests)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tests.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), promtool(t), "test", "rules", "tests.yaml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("promtool: %v", err)
	}
	return string(out), err == nil
}

// TestAlertRules runs promtool's check and unit tests on the shipped rules, and checks each
// alert's runbook, severity and test coverage.
func TestAlertRules(t *testing.T) {
	spec := readRules(t)
	dir := t.TempDir()
	rules, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	extracted := filepath.Join(dir, rulesInTests)
	if err := os.WriteFile(extracted, rules, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), promtool(t), "check", "rules", extracted).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, ok := runUnitTests(t, spec); !ok {
		t.Fatalf("promtool test rules:\n%s", out)
	}

	fires, silent := unitTestCases(t)
	list := alerts(t, spec)
	want := []string{"QuorumGuardEtcdQuorumLost", "QuorumGuardEtcdNoFaultTolerance", "QuorumGuardHookHeldTooLong",
		"QuorumGuardLearnerNotPromoted", "QuorumGuardFencingRefusals", "QuorumGuardNoLeader", "QuorumGuardReconcileFailing",
		"QuorumGuardSnapshotFailing"}
	var names []string
	for _, r := range list {
		names = append(names, r["alert"].(string))
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("no alert %s", w)
		}
	}
	for _, r := range list {
		name := r["alert"].(string)
		labels, _ := r["labels"].(map[string]any)
		if s := labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %v, want warning or critical", name, s)
		}
		ann, _ := r["annotations"].(map[string]any)
		if ann["summary"] == nil || ann["description"] == nil {
			t.Errorf("%s: no summary or description", name)
		}
		if got, want := ann["runbook_url"], runbookURL+name+".md"; got != want {
			t.Errorf("%s: runbook_url %v, want %s", name, got, want)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, "docs", "runbooks", name+".md")); err != nil {
			t.Errorf("%s: no runbook: %v", name, err)
		}
		if fires[name] == 0 || silent[name] == 0 {
			t.Errorf("%s: the unit tests have %d case(s) where it fires and %d where it does not; want both", name, fires[name], silent[name])
		}
	}
}

// unitTestCases counts, per alert, the unit-test evaluations that expect it to fire and
// those that expect silence.
func unitTestCases(t *testing.T) (fires, silent map[string]int) {
	t.Helper()
	raw, err := os.ReadFile(unitTests)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	fires, silent = map[string]int{}, map[string]int{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname]++
			} else {
				silent[a.Alertname]++
			}
		}
	}
	return fires, silent
}

var metricName = regexp.MustCompile(`\b(?:quorumguard|controller_runtime)_[a-z_]+\b`)

// TestAlertMetricsExist checks that every metric a rule names is exported: the quorumguard
// series by operatorstatus.Metrics after a pass with a learner, a held hook and an alarm,
// and the controller-runtime series by a controller that has started.
func TestAlertMetricsExist(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := operatorstatus.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	hook := machinev1beta1.LifecycleHook{Name: "EtcdQuorumOperator", Owner: "clusteroperator/etcd"}
	deleting := machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{Name: "master-0", DeletionTimestamp: &metav1.Time{Time: time.Now().Add(-time.Minute)}}}
	deleting.Spec.LifecycleHooks.PreDrain = []machinev1beta1.LifecycleHook{hook}
	m.Update(operatorstatus.MetricsInput{Time: time.Now(), Observed: true, Hook: hook,
		Machines: []machinev1beta1.Machine{deleting},
		Members:  []quorum.Member{{ID: 1, Machine: "master-0", Alarms: []string{quorum.AlarmNoSpace}}, {ID: 2, Machine: "master-3", Learner: true}}})
	m.SetLeader(true)
	if _, err := snapshot.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	exported := gathered(t, reg)

	// A controller registers its controller_runtime_* series on controller-runtime's
	// registry, which the manager serves, when it starts.
	c, err := controller.NewUnmanaged("alerts-probe", controller.Options{
		Reconciler:         reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) { return reconcile.Result{}, nil }),
		SkipNameValidation: ptr.To(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime := gathered(t, ctrlmetrics.Registry)
		if runtime["controller_runtime_reconcile_errors_total"] || time.Now().After(deadline) {
			for k := range runtime {
				exported[k] = true
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done

	for _, r := range alerts(t, readRules(t)) {
		expr, _ := r["expr"].(string)
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s names no quorumguard or controller-runtime metric", r["alert"])
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s uses %s, which quorumguard does not export", r["alert"], n)
			}
		}
	}
}

func gathered(t *testing.T, g prometheus.Gatherer) map[string]bool {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		out[mf.GetName()] = true
	}
	return out
}

// leaderFilter is the clause that keeps only the leading replica's series.
var leaderFilter = regexp.MustCompile(`\s*and on \(instance\) \(quorumguard_leader == 1\)`)

// TestAlertUnitTestsCatchBrokenRules breaks each alert in turn (always firing, never firing,
// without its leader filter, without its `for`) and requires the unit tests to fail: a unit
// test that passes with a broken rule tests nothing.
func TestAlertUnitTestsCatchBrokenRules(t *testing.T) {
	spec := readRules(t)
	for _, a := range alerts(t, spec) {
		name := a["alert"].(string)
		expr := a["expr"].(string)
		mutations := map[string]func(rule){
			"always fires": func(r rule) { r["expr"] = "vector(1)" },
			"never fires":  func(r rule) { r["expr"] = "vector(1) < 0" },
		}
		if leaderFilter.MatchString(expr) {
			mutations["counts a standby's series"] = func(r rule) { r["expr"] = leaderFilter.ReplaceAllString(expr, "") }
		}
		if _, ok := a["for"]; ok {
			mutations["fires at once"] = func(r rule) { delete(r, "for") }
		}
		for what, mutate := range mutations {
			t.Run(fmt.Sprintf("%s %s", name, what), func(t *testing.T) {
				broken := mutated(t, spec, name, mutate)
				if out, ok := runUnitTests(t, broken); ok {
					t.Errorf("the unit tests pass with %s broken (%s):\n%s", name, what, out)
				}
			})
		}
	}
}

// mutated is a deep copy of spec with the named alert changed by mutate.
func mutated(t *testing.T, spec map[string]any, alert string, mutate func(rule)) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var cp map[string]any
	if err := yaml.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range cp["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			if rm := r.(map[string]any); rm["alert"] == alert {
				mutate(rm)
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("no alert %s", alert)
	}
	return cp
}
