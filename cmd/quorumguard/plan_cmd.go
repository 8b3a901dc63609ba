package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { laterCommands = append(laterCommands, newPlanCommand) }

func newPlanCommand(c *cli) *cobra.Command {
	var (
		del, domains []string
		minTolerance int
		format       string
	)
	cmd := &cobra.Command{
		Use:   "plan [--delete MACHINE[,MACHINE]] [--domains a,b,c]",
		Short: "Play the planner forward: every step a deletion, a domain change or nothing would bring",
		Long: `Reads the cluster as one pass of the controller does and plays the change forward through
the controller's own planners, changing nothing: --delete as if those Machines were deleted
now, --domains as if the ControlPlaneMachineSet listed these failure domains, neither for
what happens from now. Each step says who acts (you, the ControlPlaneMachineSet, the
controller, the node's join step, etcd, the machine-api, the clock), on which Machine and
member, and the fault tolerance after it.

--min-tolerance defaults to one less than a healthy cluster of that size tolerates: 0 for
three voting members (fail only where quorum would be lost), 1 for five.

Exit codes: 0 the plan settles, never below the minimum; 1 the command could not run (bad
flags, an unknown Machine, --domains without an Active ControlPlaneMachineSet); 2 etcd
could not be observed; 3 the plan goes below --min-tolerance, or quorum is lost now; 4 the
plan stalls (it ends with a replacement waiting for something that never comes).`,
		Example: `  quorumguard plan --delete cluster-master-1
  quorumguard plan --delete cluster-master-0,cluster-master-2 -o json
  kubectl quorumguard plan --domains us-east-1a,us-east-1b,us-east-1c --min-tolerance 1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("-o must be table or json, not %q", format)
			}
			ao, err := c.readOptions()
			if err != nil {
				return err
			}
			cfg, err := c.restConfig()
			if err != nil {
				return err
			}
			r := planRequest{Delete: del, Domains: domains, MinTolerance: defaultMinTolerance, JSON: format == "json"}
			if cmd.Flags().Changed("min-tolerance") {
				r.MinTolerance = minTolerance
			}
			return runPlan(cmd.Context(), cfg, ao, r, c.out)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&del, "delete", nil, "comma-separated control-plane Machines to play as deleted now")
	f.StringSliceVar(&domains, "domains", nil, "comma-separated failure domains (us-east-1a,...) to play as the ControlPlaneMachineSet's list")
	f.IntVar(&minTolerance, "min-tolerance", 0, "the lowest fault tolerance the plan may reach; default one less than a healthy cluster of its size tolerates (0 for three members, 1 for five)")
	f.StringVarP(&format, "output", "o", "table", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("delete", c.machineCompletion)
	c.takeClusterFlags(cmd)
	return cmd
}
