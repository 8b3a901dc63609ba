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
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("etcd-join takes no arguments, got %q", fs.Args())
	}
	eps := splitList(*endpoints)
	switch {
	case len(eps) == 0:
		return fmt.Errorf("--endpoints is required: the client URLs of the running members")
	case *ca == "" || *cert == "" || *key == "":
		return fmt.Errorf("--etcd-ca-file, --etcd-cert-file and --etcd-key-file are all required (etcd is reached with mutual TLS)")
	case *name == "":
		return fmt.Errorf("--name is required: no NODE_NAME and no host name")
	case *interval <= 0:
		return fmt.Errorf("--interval must be positive, not %s", *interval)
	case *timeout < 0:
		return fmt.Errorf("--timeout must not be negative, not %s", *timeout)
	}
	peer := *peerURL
	if peer == "" && *nodeIP != "" {
		ip := net.ParseIP(*nodeIP)
		if ip == nil {
			return fmt.Errorf("--node-ip %q is not an IP address", *nodeIP)
		}
		peer = "https://" + net.JoinHostPort(ip.String(), "2380")
	}
	if peer == "" {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return fmt.Errorf("list this node's addresses: %w", err)
		}
		if peer, err = etcdjoin.PeerURLFromAddresses(addrs, 2380); err != nil {
			return err
		}
	}
	cli, err := etcdmember.NewFromFiles(etcdmember.Config{Endpoints: eps}, etcdmember.TLSFiles{CA: *ca, Cert: *cert, Key: *key})
	if err != nil {
		return err
	}
	defer cli.Close()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	fmt.Fprintf(out, "etcd-join: member %s, peer URL %s, data dir %s, asking %s\n", *name, peer, *dataDir, strings.Join(eps, ","))
	_, err = etcdjoin.Run(ctx, etcdjoin.Config{Name: *name, PeerURL: peer, DataDir: *dataDir, EnvFile: *envFile, Members: cli, Interval: *interval, Out: out})
	return err
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
