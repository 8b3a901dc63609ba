package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	machinev1 "github.com/openshift/api/machine/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/quorumguard/quorumguard/test/e2e"
)

// errorLog collects every error line the controllers in this test binary log.
var errorLog = &e2e.ErrorLog{}

func init() { ctrl.SetLogger(logr.New(errorLog)) }

// TestRoutineChangesRaiseNoAlarm: a rebalance (a third failure domain is added, one Machine
// moves) and a routine replacement (a Machine is deleted, as a MachineHealthCheck would)
// each go through a promotion followed at once by a removal, which etcd refuses for its
// health window. Neither may produce a Warning Event on any Machine or the
// ControlPlaneMachineSet, an error log line, or a Degraded ClusterOperator, seen through a
// watch of every change. No settling pause is taken after the start: the window of the
// bootstrap members is the controller's to wait out as well.
func TestRoutineChangesRaiseNoAlarm(t *testing.T) {
	ctx := t.Context()
	c := zonedCluster(t, "aba")
	co := fmt.Sprintf("etcd-%d", time.Now().UnixNano())
	o := e2e.ControllerOptions(c)
	o.ClusterOperator = co
	rec, err := e2e.RecordClusterOperator(ctx, cp, co)
	if err != nil {
		t.Fatal(err)
	}
	errorLog.Take()
	withMachineController(t, c, o, nil)
	uids := map[types.UID]string{}
	remember := func() {
		layout, err := e2e.Layout(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range layout {
			uids[p.UID] = "Machine " + p.Name
		}
		cpms, err := e2e.GetCPMS(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		uids[cpms.UID] = "ControlPlaneMachineSet " + cpms.Name
	}
	remember()

	rollout(t, e2e.RolloutInput{Cluster: c, Zones: "abc", Replaced: []int{2},
		Change: func(cpms *machinev1.ControlPlaneMachineSet) { e2e.SetZones(cpms, "abc") }})
	remember()
	rollout(t, e2e.RolloutInput{Cluster: c, Zones: "abc", Replaced: []int{0},
		Act: func(ctx context.Context) error {
			m, err := c.Machine(ctx, "cluster-master-0")
			if err != nil {
				return err
			}
			return c.Client.Delete(ctx, m)
		}})
	remember()

	history, err := rec.Stop()
	if err != nil {
		t.Error(err)
	}
	for _, h := range history {
		if strings.HasPrefix(h, "Degraded=True") {
			t.Errorf("the ClusterOperator went %s", h)
		}
	}
	if len(history) == 0 {
		t.Error("no ClusterOperator condition was recorded")
	}
	warnings, err := e2e.WarningEvents(ctx, cp, uids)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("Warning Event: %s", w)
	}
	for _, l := range errorLog.Take() {
		t.Errorf("error log line: %s", l)
	}
}
