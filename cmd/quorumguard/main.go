// Command quorumguard keeps an etcd-backed control plane quorate while its machines are
// replaced. `quorumguard` runs the controller; `quorumguard status` prints the picture;
// `quorumguard etcd-join` runs on a new node before etcd and writes what etcd starts from.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/quorumguard/quorumguard/pkg/app"
	"github.com/quorumguard/quorumguard/pkg/version"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "quorumguard:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(exitFailed)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "status" {
		return runStatus(args[1:])
	}
	if len(args) > 0 && args[0] == "etcd-join" {
		return runJoin(args[1:])
	}
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		fmt.Println(version.String())
		return nil
	}
	fs := flag.NewFlagSet("quorumguard", flag.ContinueOnError)
	var o options
	o.bind(fs)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	ao, err := o.appOptions()
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	c, err := app.New(cfg, ao)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return c.Run(ctx)
}

// restConfig finds the API server as kubectl and controller-runtime do: --kubeconfig, then
// $KUBECONFIG, then the in-cluster service account, then ~/.kube/config. So `kubectl
// quorumguard status`, which kubectl starts without its own flags, talks to the cluster
// kubectl would.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" && os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %q: %w", kubeconfig, err)
	}
	return cfg, nil
}
