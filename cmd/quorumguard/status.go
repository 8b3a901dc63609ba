package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/inspect"
	"github.com/quorumguard/quorumguard/pkg/operatorstatus"
)

// statusFlags are the controller's flags that `quorumguard status` takes too, with the same
// defaults and the same QUORUMGUARD_<FLAG> environment variables.
var statusFlags = []string{
	"kubeconfig", "etcd-endpoints", "etcd-ca-file", "etcd-cert-file", "etcd-key-file",
	"machine-namespace", "cluster-operator", "hook-name", "hook-owner", "replicas",
}

// statusTimeout bounds the whole read, etcd probes included.
const statusTimeout = 30 * time.Second

func runStatus(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return statusCommand(ctx, args, os.Stdout)
}

// statusCommand prints etcd's members, the control-plane Machines, the ClusterOperator and
// the planner's next step. It only reads.
func statusCommand(ctx context.Context, args []string, out io.Writer) error {
	var o options
	all := flag.NewFlagSet("quorumguard", flag.ContinueOnError)
	all.SetOutput(io.Discard)
	o.bind(all)
	fs := flag.NewFlagSet("quorumguard status", flag.ContinueOnError)
	for _, name := range statusFlags {
		f := all.Lookup(name)
		fs.Var(f.Value, f.Name, f.Usage)
	}
	format := fs.String("o", "table", "output format: table or json")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: quorumguard status [flags]\n\nPrints etcd's members, the control-plane Machines, the ClusterOperator and the next step, changing nothing.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("status takes no arguments, got %q", fs.Args())
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("-o must be table or json, not %q", *format)
	}
	if o.etcdCA == "" || o.etcdCert == "" || o.etcdKey == "" {
		return fmt.Errorf("--etcd-ca-file, --etcd-cert-file and --etcd-key-file are all required (etcd is reached with mutual TLS)")
	}
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	rep, err := inspect.Cluster(ctx, cfg, app.Options{
		Namespace: o.namespace, Hook: machinev1beta1.LifecycleHook{Name: o.hookName, Owner: o.hookOwner},
		DefaultReplicas: o.replicas, EtcdEndpoints: o.endpoints(),
		EtcdCA: o.etcdCA, EtcdCert: o.etcdCert, EtcdKey: o.etcdKey, ClusterOperator: o.clusterOperator,
	})
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := printTable(out, rep, o.clusterOperator); err != nil {
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
			row(m.ID, dash(m.Name), dash(m.Machine), role, m.Health, m.RaftIndex, yes(m.Leader))
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
