package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quorumguard/quorumguard/pkg/etcdjoin"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

func runJoin(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return joinCommand(ctx, args, os.Stdout)
}

// joinCommand is `quorumguard etcd-join`: it runs on a control-plane node before etcd
// starts, waits until the controller has added this node as a learner, and writes the
// environment file etcd starts from. It never changes membership.
func joinCommand(ctx context.Context, args []string, out io.Writer) error {
	j, err := parseJoin(args)
	if err != nil {
		return err
	}
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

func parseJoin(args []string) (joinFlags, error) {
	fs := flag.NewFlagSet("quorumguard etcd-join", flag.ContinueOnError)
	hostname, _ := os.Hostname()
	name := fs.String("name", firstNonEmpty(os.Getenv("NODE_NAME"), hostname), "etcd member name, the node's name ($NODE_NAME, else the host name)")
	peerURL := fs.String("peer-url", "", "this node's peer URL, https://<address>:2380; worked out from --node-ip or from the node's one global unicast address when empty")
	nodeIP := fs.String("node-ip", "", "this node's address, used for the peer URL when --peer-url is empty")
	endpoints := fs.String("endpoints", "", "comma-separated client URLs of the running members (required)")
	ca := fs.String("etcd-ca-file", "", "CA bundle that signed the etcd serving certificates")
	cert := fs.String("etcd-cert-file", "", "client certificate for etcd")
	key := fs.String("etcd-key-file", "", "client key for etcd")
	dataDir := fs.String("data-dir", "/var/lib/etcd", "etcd's data dir; a stale one is moved aside to <data-dir>.stale-<time>, never deleted")
	envFile := fs.String("env-file", "/run/etcd/join.env", "where to write the environment etcd starts from")
	interval := fs.Duration("interval", time.Second, "how often the member list is read while waiting")
	timeout := fs.Duration("timeout", 0, "give up after this long (0 waits until stopped)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: quorumguard etcd-join [flags]\n\nWaits until quorumguard has added this node's peer URL as a learner, then writes the\nenvironment file etcd starts from (ETCD_NAME, ETCD_INITIAL_CLUSTER, state existing).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return joinFlags{}, err
	}
	j := joinFlags{name: *name, peerURL: *peerURL, dataDir: *dataDir, envFile: *envFile, endpoints: splitList(*endpoints),
		ca: *ca, cert: *cert, key: *key, interval: *interval, timeout: *timeout}
	switch {
	case fs.NArg() > 0:
		return j, fmt.Errorf("etcd-join takes no arguments, got %q", fs.Args())
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
