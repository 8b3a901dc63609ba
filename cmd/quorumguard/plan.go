package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"k8s.io/client-go/rest"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/plan"
)

// planRequest is what `quorumguard plan` is asked to play.
type planRequest struct {
	// Delete are the Machines played as deleted now.
	Delete []string
	// Domains, when not empty, are played as the ControlPlaneMachineSet's failure-domain
	// list, by name (us-east-1a).
	Domains []string
	// MinTolerance is the lowest fault tolerance the plan may reach without failing;
	// defaultMinTolerance asks for plan.DefaultMinTolerance of the desired voting members
	// (0 for three, 1 for five).
	MinTolerance int
	// JSON prints the plan as JSON instead of a table.
	JSON bool
}

// defaultMinTolerance in planRequest.MinTolerance asks for the default.
const defaultMinTolerance = math.MinInt

// exitPlanStalls: the plan was printed and it stalls: it ends with a replacement unfinished,
// waiting on something that never comes. A plan that goes below --min-tolerance exits
// exitNoMargin instead, which takes precedence.
const exitPlanStalls = 4

// planReport is what `quorumguard plan -o json` prints.
type planReport struct {
	Delete       []string `json:"delete,omitempty"`
	Domains      []string `json:"domains,omitempty"`
	MinTolerance int      `json:"minFaultTolerance"`
	plan.Result
}

// runPlan reads the cluster as one pass of the controller does (controlplane.DryRun), plays
// the requested change forward through the planners (pkg/plan), prints every step, and
// returns an *exitError when the plan stalls or goes below the minimum fault tolerance. It
// changes nothing.
func runPlan(ctx context.Context, cfg *rest.Config, ao app.Options, r planRequest, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	cl, view, err := connect(cfg, ao)
	if err != nil {
		return err
	}
	defer view.Close()
	p, err := controlplane.DryRun(ctx, controlplane.Source{Reader: cl, Etcd: view, Namespace: ao.Namespace, Hook: ao.Hook, PreTerminateHook: ao.PreTerminate(),
		DefaultReplicas: ao.DefaultReplicas, LearnerStartTimeout: ao.LearnerStartTimeout})
	if err != nil {
		return err
	}
	if p.EtcdErr != nil {
		var nq *etcdmember.NoQuorumError
		if errors.As(p.EtcdErr, &nq) {
			return &exitError{exitNoMargin, "etcd has lost quorum, nothing can be planned: " + p.EtcdErr.Error()}
		}
		return &exitError{exitEtcdUnobserved, "etcd could not be observed, nothing can be planned: " + p.EtcdErr.Error()}
	}
	in, err := plan.FromPass(p, r.Delete, r.Domains)
	if err != nil {
		return err
	}
	res, err := plan.Run(in)
	if err != nil {
		return err
	}
	rep := planReport{Delete: r.Delete, Domains: r.Domains, MinTolerance: r.MinTolerance, Result: res}
	if rep.MinTolerance == defaultMinTolerance {
		rep.MinTolerance = plan.DefaultMinTolerance(res.Desired)
	}
	if r.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := printPlan(out, rep); err != nil {
		return err
	}
	switch {
	case res.Lowest < rep.MinTolerance:
		return &exitError{exitNoMargin, fmt.Sprintf("the plan goes down to fault tolerance %d, below the minimum of %d", res.Lowest, rep.MinTolerance)}
	case res.Stalls():
		return &exitError{exitPlanStalls, "the plan stalls: " + res.Stall}
	}
	return nil
}

// printPlan writes the plan as a table of steps and a verdict.
func printPlan(out io.Writer, rep planReport) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	var asked []string
	if len(rep.Delete) > 0 {
		asked = append(asked, "delete "+strings.Join(rep.Delete, ", "))
	}
	if len(rep.Domains) > 0 {
		asked = append(asked, "failure domains "+strings.Join(rep.Domains, ", "))
	}
	if len(asked) == 0 {
		asked = append(asked, "what happens from now")
	}
	fmt.Fprintf(w, "PLAN: %s (desired voting members: %d; fault tolerance now: %d)\n", strings.Join(asked, "; "), rep.Desired, rep.StartTolerance)
	if len(rep.Steps) == 0 {
		fmt.Fprintln(w, "no step: nothing happens")
	} else {
		fmt.Fprintln(w, "STEP\tWHO\tKIND\tMACHINE\tMEMBER\tTOLERANCE\tWHAT")
		for i, st := range rep.Steps {
			member := dash(st.Member)
			if st.To != "" {
				member += " -> " + st.To
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", i+1, st.Actor, st.Kind, dash(st.Machine), member, st.FaultTolerance,
				strings.ReplaceAll(st.What, "\n", " | "))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "LOWEST FAULT TOLERANCE: %d (minimum allowed: %d)\n", rep.Lowest, rep.MinTolerance)
	if rep.Stalls() {
		fmt.Fprintf(w, "STALLS: %s\n", rep.Stall)
	} else {
		fmt.Fprintf(w, "SETTLED after %d steps\n", len(rep.Steps))
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "NOTE: "+n)
	}
	return w.Flush()
}
