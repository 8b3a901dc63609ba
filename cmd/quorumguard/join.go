package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quorumguard/quorumguard/pkg/etcdjoin"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

func newJoinCommand(c *cli) *cobra.Command {
	in := &joinInput{}
	cmd := &cobra.Command{
		Use:   "etcd-join",
		Short: "On a new control-plane node: wait to be added as a learner, then write etcd's environment",
		Long: `Runs on a control-plane node before etcd starts: waits until quorumguard has added this
node's peer URL as a learner, then writes the environment file etcd starts from
(ETCD_NAME, ETCD_INITIAL_CLUSTER, state existing). It never changes membership.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := in.check()
			if err != nil {
				return err
			}
			return join(cmd.Context(), j, c.out)
		},
	}
	in.bind(cmd.Flags())
	return cmd
}

// joinCommand runs `quorumguard etcd-join args...`.
func joinCommand(ctx context.Context, args []string, out io.Writer) error {
	return execute(ctx, append([]string{"etcd-join"}, args...), out)
}

// join is `quorumguard etcd-join`: it runs on a control-plane node before etcd starts,
// waits until the controller has added this node as a learner, and writes the environment
// file etcd starts from. It never changes membership.
func join(ctx context.Context, j joinFlags, out io.Writer) error {
	peer := j.peerURL
	if peer == "" {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return fmt.Errorf("list this node's addresses: %w", err)
		}
		if peer, err = etcdjoin.PeerURLFromAddresses(addrs, 2380); err != nil {
			return err
		}
	}
	cli, err := etcdmember.NewFromFiles(etcdmember.Config{Endpoints: j.endpoints}, etcdmember.TLSFiles{CA: j.ca, Cert: j.cert, Key: j.key})
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	if j.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, j.timeout)
		defer cancel()
	}
	fmt.Fprintf(out, "etcd-join: member %s, peer URL %s, data dir %s, asking %s\n", j.name, peer, j.dataDir, strings.Join(j.endpoints, ","))
	_, err = etcdjoin.Run(ctx, etcdjoin.Config{Name: j.name, PeerURL: peer, DataDir: j.dataDir, EnvFile: j.envFile, Members: cli, Interval: j.interval, Out: out})
	return err
}

// joinFlags are etcd-join's flags, checked.
type joinFlags struct {
	name, peerURL, dataDir, envFile string
	endpoints                       []string
	ca, cert, key                   string
	interval, timeout               time.Duration
}

// joinInput is etcd-join's flags as given.
type joinInput struct {
	name, peerURL, nodeIP, endpoints, ca, cert, key, dataDir, envFile string
	interval, timeout                                                 time.Duration
}

func (in *joinInput) bind(fs *pflag.FlagSet) {
	hostname, _ := os.Hostname()
	fs.StringVar(&in.name, "name", firstNonEmpty(os.Getenv("NODE_NAME"), hostname), "etcd member name, the node's name ($NODE_NAME, else the host name)")
	fs.StringVar(&in.peerURL, "peer-url", "", "this node's peer URL, https://<address>:2380; worked out from --node-ip or from the node's one global unicast address when empty")
	fs.StringVar(&in.nodeIP, "node-ip", "", "this node's address, used for the peer URL when --peer-url is empty")
	fs.StringVar(&in.endpoints, "endpoints", "", "comma-separated client URLs of the running members (required)")
	fs.StringVar(&in.ca, "etcd-ca-file", "", "CA bundle that signed the etcd serving certificates")
	fs.StringVar(&in.cert, "etcd-cert-file", "", "client certificate for etcd")
	fs.StringVar(&in.key, "etcd-key-file", "", "client key for etcd")
	fs.StringVar(&in.dataDir, "data-dir", "/var/lib/etcd", "etcd's data dir; a stale one is moved aside to <data-dir>.stale-<time>, never deleted")
	fs.StringVar(&in.envFile, "env-file", "/run/etcd/join.env", "where to write the environment etcd starts from")
	fs.DurationVar(&in.interval, "interval", time.Second, "how often the member list is read while waiting")
	fs.DurationVar(&in.timeout, "timeout", 0, "give up after this long (0 waits until stopped)")
}

// parseJoin parses etcd-join's flags alone, and checks them.
func parseJoin(args []string) (joinFlags, error) {
	in := &joinInput{}
	fs := pflag.NewFlagSet("quorumguard etcd-join", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	in.bind(fs)
	if err := fs.Parse(args); err != nil {
		return joinFlags{}, err
	}
	if fs.NArg() > 0 {
		return joinFlags{}, fmt.Errorf("etcd-join takes no arguments, got %q", fs.Args())
	}
	return in.check()
}

// check turns the flags as given into joinFlags, or says what is wrong with them.
func (in *joinInput) check() (joinFlags, error) {
	j := joinFlags{name: in.name, peerURL: in.peerURL, dataDir: in.dataDir, envFile: in.envFile, endpoints: splitList(in.endpoints),
		ca: in.ca, cert: in.cert, key: in.key, interval: in.interval, timeout: in.timeout}
	nodeIP := &in.nodeIP
	switch {
	case len(j.endpoints) == 0:
		return j, fmt.Errorf("--endpoints is required: the client URLs of the running members")
	case j.ca == "" || j.cert == "" || j.key == "":
		return j, fmt.Errorf("--etcd-ca-file, --etcd-cert-file and --etcd-key-file are all required (etcd is reached with mutual TLS)")
	case j.name == "":
		return j, fmt.Errorf("--name is required: no NODE_NAME and no host name")
	case j.interval <= 0:
		return j, fmt.Errorf("--interval must be positive, not %s", j.interval)
	case j.timeout < 0:
		return j, fmt.Errorf("--timeout must not be negative, not %s", j.timeout)
	}
	if j.peerURL == "" && *nodeIP != "" {
		ip := net.ParseIP(*nodeIP)
		if ip == nil {
			return j, fmt.Errorf("--node-ip %q is not an IP address", *nodeIP)
		}
		j.peerURL = "https://" + net.JoinHostPort(ip.String(), "2380")
	}
	return j, nil
}

func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
