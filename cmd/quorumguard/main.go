// Command quorumguard keeps an etcd-backed control plane quorate while its machines are
// replaced. `quorumguard` runs the controller; `quorumguard status` prints the picture;
// `quorumguard plan` plays the planner forward; `quorumguard release` is the checked escape
// hatch for a stuck Machine; `quorumguard etcd-join` runs on a new node before etcd and
// writes what etcd starts from. The command line is cobra's (newRootCommand).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := execute(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quorumguard:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(exitFailed)
	}
}
