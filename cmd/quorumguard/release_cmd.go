package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func init() { laterCommands = append(laterCommands, newReleaseCommand) }

// defaultReleaseLockNamespace is where the shipped Deployment runs, and so where its
// leader-for-life lock and epoch live (the controller's default is its own namespace).
const defaultReleaseLockNamespace = "quorumguard"

func newReleaseCommand(c *cli) *cobra.Command {
	var (
		member                string
		force, dryRun         bool
		lockID, lockNamespace string
	)
	cmd := &cobra.Command{
		Use:   "release MACHINE | release --member ID",
		Short: "The checked escape hatch: remove a stuck Machine's member only if quorum holds, then release its hook",
		Long: `Frees a deleting control-plane Machine that quorumguard's hook holds, with the controller's own
checks instead of stripping the hook by hand: it reads the cluster as the controller does,
removes the Machine's etcd member (moving leadership away first if it leads) only if the
voting members left keep quorum, and without --force only where the controller would (its
replacement votes, fault tolerance stays above 0); then it releases the hook, after passing
the fence again and reading the member list afresh. It never releases on a guess: a member
that may belong to the Machine without certainty, or a voting member no Machine accounts
for, refuses the release.

--force goes ahead where quorumguard would wait, names each risk in its output and in a
Warning Event, and still never removes a member when that would lose quorum.

--member ID (hex, as etcdctl prints it) removes a voting member that no Machine accounts for,
only if it is dead (it does not answer its own status, or never started) and quorum holds
after.

Before changing anything it claims a fencing token above the running controller's, which is
then refused at its next change, steps down and restarts with a newer token (expect one
QuorumGuardFencingRefusals alert): the two never act on the same state.

With --endpoint-consumers (the controller's, and its --endpoints-configmap, in the lock's
namespace) a member is removed only once each consumer has acknowledged a published list
without it, as the controller removes one; --force goes ahead and names the risk.

With --snapshot-dir (and --snapshot-keep, --snapshot-budget, as the controller takes them) an
etcd snapshot is taken and checked before a voting member is removed; if none can be taken
the release is refused with nothing changed.

Every step is printed and recorded as a ManualRelease Event on the Machine. Exit codes: 0
done, or nothing to do; 1 the command could not run; 2 etcd could not be observed; 3
quorum is lost; 4 refused (the reason is printed; nothing was changed).`,
		Example: `  quorumguard release cluster-master-1 --dry-run
  quorumguard release cluster-master-1
  quorumguard release --member 8e9e05c52164694d`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 1:
				return fmt.Errorf("release takes one Machine, got %q", args)
			case (len(args) == 1) == (member != ""):
				return fmt.Errorf("release takes either a Machine name or --member ID, exactly one")
			}
			return nil
		},
		ValidArgsFunction: c.machineCompletion,
		RunE: func(cmd *cobra.Command, args []string) error {
			r := releaseRequest{Force: force, DryRun: dryRun}
			if len(args) == 1 {
				r.Machine = args[0]
			} else {
				id, err := strconv.ParseUint(strings.TrimPrefix(member, "0x"), 16, 64)
				if err != nil || id == 0 {
					return fmt.Errorf("--member %q is not an etcd member ID (hex, as etcdctl prints it)", member)
				}
				r.Member = id
			}
			ao, err := c.readOptions()
			if err != nil {
				return err
			}
			ao.ElectionID, ao.ElectionNS = lockID, lockNamespace
			// The snapshot flags, parsed and checked as the controller's are.
			full, err := c.o.appOptions()
			if err != nil {
				return err
			}
			ao.SnapshotDir, ao.SnapshotKeep, ao.SnapshotBudget = full.SnapshotDir, full.SnapshotKeep, full.SnapshotBudget
			ao.EndpointsConfigMap, ao.EndpointConsumers = full.EndpointsConfigMap, full.EndpointConsumers
			ao.OpenShiftEndpoints, ao.SkipAPIServerRollout = full.OpenShiftEndpoints, full.SkipAPIServerRollout
			cfg, err := c.restConfig()
			if err != nil {
				return err
			}
			return runRelease(cmd.Context(), cfg, ao, r, c.out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&member, "member", "", "release this voting member (hex ID) that no Machine accounts for, instead of a Machine")
	f.BoolVar(&force, "force", false, "go ahead where quorumguard would wait for a margin; never when quorum would be lost")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be done and change nothing (no token is claimed)")
	f.StringVar(&lockID, "leader-election-id", c.o.electionID, "the controller's leader-for-life lock; the token claimed is above its epoch (<id>-epoch)")
	f.StringVar(&lockNamespace, "leader-election-namespace", defaultReleaseLockNamespace, "namespace of the controller's lock (where the Deployment runs)")
	for _, name := range []string{"snapshot-dir", "snapshot-keep", "snapshot-budget", "endpoints-configmap", "endpoint-consumers"} {
		f.AddFlag(c.all.Lookup(name))
	}
	c.takeClusterFlags(cmd)
	return cmd
}
