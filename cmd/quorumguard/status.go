package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumguard/quorumguard/pkg/inspect"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
)

// statusTimeout bounds the whole read, etcd probes included.
const statusTimeout = 30 * time.Second

func newStatusCommand(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print etcd's members, the control-plane Machines, the ClusterOperator and the next step",
		Long: `Prints etcd's members, the control-plane Machines, the ClusterOperator, the
MachineHealthChecks over the masters and the planner's next step, as one pass of the
controller would see them, changing nothing.

Exit codes: 0 healthy; 1 the command could not run (bad flags, a missing or unreadable
certificate file, the API server unreachable); 2 the report was printed but etcd could not
be observed (unreachable, a rejected certificate); 3 etcd has lost quorum or one more failed
voting member would lose it.`,
		Example: `  quorumguard status --etcd-ca-file ca.crt --etcd-cert-file client.crt --etcd-key-file client.key
  kubectl quorumguard status -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("-o must be table or json, not %q", format)
			}
			return c.status(cmd.Context(), format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "table", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	c.takeClusterFlags(cmd)
	return cmd
}

// statusCommand runs `quorumguard status args...`.
func statusCommand(ctx context.Context, args []string, out io.Writer) error {
	return execute(ctx, append([]string{"status"}, args...), out)
}

// status prints etcd's members, the control-plane Machines, the ClusterOperator and the
// planner's next step. It only reads.
func (c *cli) status(ctx context.Context, format string) error {
	ao, err := c.readOptions()
	if err != nil {
		return err
	}
	cfg, err := c.restConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	rep, err := inspect.Cluster(ctx, cfg, ao)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := printTable(c.out, rep, ao.ClusterOperator); err != nil {
		return err
	}
	return verdict(rep)
}

// The exit codes of `quorumguard status`, for scripts and probes.
const (
	// exitFailed: the command could not run (bad flags, the API server unreachable).
	exitFailed = 1
	// exitEtcdUnobserved: the report was printed, but etcd could not be observed
	// (unreachable, a rejected certificate).
	exitEtcdUnobserved = 2
	// exitNoMargin: etcd has lost quorum, or one more failure would lose it.
	exitNoMargin = 3
)

// exitError carries an exit code other than exitFailed; the report has been printed.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// verdict is nil for a healthy cluster, else the exit code the printed report calls for.
func verdict(rep *operatorstatus.Report) error {
	switch {
	case rep.QuorumLost:
		return &exitError{exitNoMargin, "etcd has lost quorum"}
	case rep.EtcdError != "":
		return &exitError{exitEtcdUnobserved, "etcd could not be observed: " + rep.EtcdError}
	case rep.Next.FaultTolerance <= 0:
		return &exitError{exitNoMargin, fmt.Sprintf("etcd has no fault tolerance: one more failed voting member loses quorum (tolerance %d)", rep.Next.FaultTolerance)}
	}
	return nil
}

// printTable writes the report as aligned tables, one section after another.
func printTable(out io.Writer, rep *operatorstatus.Report, coName string) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(cells ...any) {
		strs := make([]string, len(cells))
		for i, c := range cells {
			strs[i] = strings.ReplaceAll(fmt.Sprint(c), "\n", " | ")
		}
		fmt.Fprintln(w, strings.Join(strs, "\t"))
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}

	row("CONTROL-PLANE TOPOLOGY: " + dash(rep.Topology))
	if rep.TopologyHold != "" {
		row("HELD: " + rep.TopologyHold)
	}
	row()
	row(fmt.Sprintf("ETCD MEMBERS (desired voting members: %d)", rep.Desired))
	switch {
	case rep.EtcdError != "" && len(rep.Members) == 0:
		row("etcd could not be observed: " + rep.EtcdError)
	case rep.EtcdError != "":
		row("etcd has lost quorum; the members are as one member sees them: " + rep.EtcdError)
	}
	if len(rep.Members) > 0 {
		row("ID", "NAME", "MACHINE", "ROLE", "HEALTH", "RAFT INDEX", "LEADER")
		for _, m := range rep.Members {
			role := m.Role
			if m.Role == "learner" {
				role = fmt.Sprintf("learner (%.0f%%)", 100*m.Progress)
			}
			health := m.Health
			if len(m.Alarms) > 0 {
				health += " (alarm " + strings.Join(m.Alarms, ", ") + ")"
			}
			row(m.ID, dash(m.Name), dash(m.Machine), role, health, m.RaftIndex, yes(m.Leader))
		}
	}
	row()
	row("CONTROL-PLANE MACHINES in " + rep.Namespace)
	row("NAME", "PHASE", "FAILURE DOMAIN", "HOOK", "ETCDMEMBER", "MESSAGE")
	for _, m := range rep.Machines {
		phase := dash(m.Phase)
		if m.Deleting && m.Phase != "Deleting" {
			phase += " (deleting)"
		}
		row(m.Name, phase, dash(m.FailureDomain), yes(m.Hook), dash(m.EtcdMember), dash(m.Message))
	}
	row()
	switch {
	case coName == "":
		row("CLUSTEROPERATOR: none (--cluster-operator is empty)")
	case rep.ClusterOperator == nil:
		row("CLUSTEROPERATOR " + coName + ": not found")
	default:
		row("CLUSTEROPERATOR " + rep.ClusterOperator.Name)
		row("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE")
		for _, c := range rep.ClusterOperator.Conditions {
			row(c.Type, c.Status, dash(c.Reason), c.LastTransitionTime.UTC().Format(time.RFC3339), dash(c.Message))
		}
	}
	if len(rep.MachineHealthChecks) > 0 {
		row()
		row("MACHINEHEALTHCHECKS over control-plane Machines")
		row("NAME", "MAXUNHEALTHY", "ALLOWED AT ONCE", "SAFE")
		for _, v := range rep.MachineHealthChecks {
			row(v.Name, dash(v.MaxUnhealthy), v.Allowed, yes(v.Safe))
		}
	}
	row()
	row("NEXT STEP: " + rep.Next.Step)
	row("REASON: " + dash(rep.Next.Reason))
	if rep.EtcdError == "" {
		row(fmt.Sprintf("FAULT TOLERANCE: %d", rep.Next.FaultTolerance))
	}
	for _, r := range rep.Next.Reports {
		row("NOTE: " + r)
	}
	return w.Flush()
}
