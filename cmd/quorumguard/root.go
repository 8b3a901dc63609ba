package main

import (
	"context"
	goflag "flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/pkg/masters"
	"github.com/quorumguard/quorumguard/pkg/version"
)

// cli is what every command shares: the controller's flags (each command registers the ones
// it takes), kubectl's connection flags, and where output goes.
type cli struct {
	o    options
	kube *genericclioptions.ConfigFlags
	// all holds every controller flag; a command adds the ones it takes from it, so that a
	// flag means the same, with the same default and help, wherever it appears.
	all *pflag.FlagSet
	out io.Writer
}

// clusterFlags are the controller's flags that the commands reading the cluster (status,
// plan, release) take too, with the same defaults and QUORUMGUARD_<FLAG> variables.
var clusterFlags = []string{
	"etcd-endpoints", "etcd-ca-file", "etcd-cert-file", "etcd-key-file",
	"machine-namespace", "cluster-operator", "hook-name", "hook-owner", "preterminate-hook-name", "preterminate-hook-owner", "replicas", "learner-start-timeout",
}

// newKubeFlags are kubectl's connection flags (k8s.io/cli-runtime), less the ones that mean
// nothing here: -n is --machine-namespace, the namespace every command works in.
func newKubeFlags() *genericclioptions.ConfigFlags {
	f := genericclioptions.NewConfigFlags(false)
	f.Namespace = nil
	f.CacheDir = nil
	f.Timeout = nil
	f.ImpersonateUserExtra = nil
	f.DisableCompression = nil
	f.ProxyURL = nil
	return f
}

// newRootCommand is the whole command line. Without a subcommand it runs the controller.
func newRootCommand(ctx context.Context, out io.Writer) *cobra.Command {
	root, _ := newCLI(ctx, out)
	return root
}

// newCLI is newRootCommand with the options its flags set.
func newCLI(ctx context.Context, out io.Writer) (*cobra.Command, *cli) {
	c := &cli{kube: newKubeFlags(), all: pflag.NewFlagSet("quorumguard", pflag.ContinueOnError), out: out}
	c.o.bind(c.all)
	zapOpts := zap.Options{}
	root := &cobra.Command{
		Use:   "quorumguard",
		Short: "Keeps an etcd-backed control plane quorate while its Machines are replaced",
		Long: `quorumguard keeps an etcd-backed control plane quorate while its Machines are replaced.

Without a subcommand it runs the controller. The subcommands read the cluster as the
controller does (status, plan), release a stuck Machine with the controller's own checks
(release), or run on a new control-plane node before etcd (etcd-join).

Every flag can also be set through QUORUMGUARD_<FLAG>, the flag's name upper-cased with
dashes as underscores; a flag given on the command line wins.`,
		Version:       version.String(),
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		// The controller's flags are for the controller: the subcommands take their own.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd.Flags()) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asPlugin() && cmd.Flags().NFlag() == 0 {
				// `kubectl quorumguard` alone is a question, not a request to run the
				// controller on the administrator's laptop.
				return cmd.Help()
			}
			return c.runController(ctx, &zapOpts)
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(out)
	root.SetErr(os.Stderr)
	root.SetContext(ctx)
	if asPlugin() {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl quorumguard"}
	}
	root.Flags().AddFlagSet(c.all)
	c.kube.AddFlags(root.Flags())
	gofs := goflag.NewFlagSet("zap", goflag.ContinueOnError)
	zapOpts.BindFlags(gofs)
	root.Flags().AddGoFlagSet(gofs)
	root.Flags().SortFlags = false

	root.AddCommand(newStatusCommand(c), newJoinCommand(c))
	addLaterCommands(root, c)
	return root, c
}

// addLaterCommands is filled in by the commands defined in their own files.
var laterCommands []func(*cli) *cobra.Command

func addLaterCommands(root *cobra.Command, c *cli) {
	for _, f := range laterCommands {
		root.AddCommand(f(c))
	}
}

// takeClusterFlags gives cmd kubectl's connection flags and the controller's clusterFlags.
func (c *cli) takeClusterFlags(cmd *cobra.Command) {
	for _, name := range clusterFlags {
		cmd.Flags().AddFlag(c.all.Lookup(name))
	}
	c.kube.AddFlags(cmd.Flags())
	_ = cmd.RegisterFlagCompletionFunc("etcd-ca-file", fileCompletion)
	_ = cmd.RegisterFlagCompletionFunc("etcd-cert-file", fileCompletion)
	_ = cmd.RegisterFlagCompletionFunc("etcd-key-file", fileCompletion)
}

func fileCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveDefault
}

// noArgs refuses positional arguments, naming the command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", cmd.Name(), args)
	}
	return nil
}

// asPlugin says the binary runs as kubectl's plugin (installed as kubectl-quorumguard).
func asPlugin() bool { return strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl-") }

// execute runs the command line args (without the program name), printing to out.
func execute(ctx context.Context, args []string, out io.Writer) error {
	root := newRootCommand(ctx, out)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func (c *cli) runController(ctx context.Context, zapOpts *zap.Options) error {
	ao, err := c.o.appOptions()
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zapOpts)))
	cfg, err := c.restConfig()
	if err != nil {
		return err
	}
	ctl, err := app.New(cfg, ao)
	if err != nil {
		return err
	}
	return ctl.Run(ctx)
}

// restConfig finds the API server as kubectl and controller-runtime do: the connection
// flags (--kubeconfig, --context, ...), then $KUBECONFIG, then the in-cluster service
// account, then ~/.kube/config. So `kubectl quorumguard status`, which kubectl starts without
// its own flags, talks to the cluster kubectl would.
func (c *cli) restConfig() (*rest.Config, error) {
	given := func(p *string) bool { return p != nil && *p != "" }
	k := c.kube
	if !given(k.KubeConfig) && !given(k.Context) && !given(k.ClusterName) && !given(k.AuthInfoName) && !given(k.APIServer) &&
		os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	cfg, err := k.ToRESTConfig()
	if err != nil {
		if given(k.KubeConfig) {
			return nil, fmt.Errorf("load kubeconfig %q: %w", *k.KubeConfig, err)
		}
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return cfg, nil
}

// readOptions are the options of a command that reads the cluster with etcd: the etcd
// client files must all be given and load, or the command fails (exit 1) before it reads
// anything; an etcd that then refuses them is reported as unobservable.
func (c *cli) readOptions() (app.Options, error) {
	o := c.o
	if o.etcdCA == "" || o.etcdCert == "" || o.etcdKey == "" {
		return app.Options{}, fmt.Errorf("--etcd-ca-file, --etcd-cert-file and --etcd-key-file are all required (etcd is reached with mutual TLS)")
	}
	if err := etcdmember.CheckTLSFiles(etcdmember.TLSFiles{CA: o.etcdCA, Cert: o.etcdCert, Key: o.etcdKey}); err != nil {
		return app.Options{}, err
	}
	return app.Options{
		Namespace: o.namespace, Hook: machinev1beta1.LifecycleHook{Name: o.hookName, Owner: o.hookOwner},
		PreTerminateHook: o.preTerminate(), NoPreTerminateHook: o.preTermName == "",
		DefaultReplicas: o.replicas, EtcdEndpoints: o.endpoints(), LearnerStartTimeout: o.learnerStart,
		EtcdCA: o.etcdCA, EtcdCert: o.etcdCert, EtcdKey: o.etcdKey, ClusterOperator: o.clusterOperator,
	}, nil
}

// connect is an API client that reads afresh (no cache) and the controller's etcd View,
// as the commands that read the cluster and act on it use them; the caller closes the View.
func connect(cfg *rest.Config, ao app.Options) (client.Client, *etcdmember.View, error) {
	cl, err := client.New(cfg, client.Options{Scheme: app.Scheme()})
	if err != nil {
		return nil, nil, err
	}
	view, err := app.NewEtcdView(ao, cl)
	if err != nil {
		return nil, nil, err
	}
	return cl, view, nil
}

// machineCompletion completes the names of the control-plane Machines, read with the
// connection flags given so far; nothing when the cluster cannot be read.
func (c *cli) machineCompletion(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	cfg, err := c.restConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cl, err := client.New(cfg, client.Options{Scheme: app.Scheme()})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var list machinev1beta1.MachineList
	if err := cl.List(cmd.Context(), &list, client.InNamespace(c.o.namespace), client.MatchingLabels{masters.RoleLabel: "master"}); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	// A comma-separated list completes its last element.
	done, last := "", toComplete
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		done, last = toComplete[:i+1], toComplete[i+1:]
	}
	var out []string
	for _, m := range list.Items {
		if strings.HasPrefix(m.Name, last) && !slices.Contains(args, m.Name) {
			out = append(out, done+m.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
