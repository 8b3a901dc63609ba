package etcdjoin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quorumguard/quorumguard/pkg/etcdmember"
)

// Lister lists the members; an *etcdmember.Client in production.
type Lister interface {
	Members(ctx context.Context) ([]etcdmember.Member, error)
}

// Config says who this node is and where etcd's files are.
type Config struct {
	// Name is the member name etcd starts with, usually the node name.
	Name string
	// PeerURL is this node's peer URL, https://<node address>:2380.
	PeerURL string
	// DataDir is etcd's data dir; EnvFile is where the environment for etcd is written.
	DataDir, EnvFile string
	// Members lists the running cluster's members.
	Members Lister
	// Interval is how often the member list is read while waiting; 1s when zero.
	Interval time.Duration
	// Out receives one progress line per thing that happens; io.Discard when nil.
	Out io.Writer
	// Now is the clock, for the name of a data dir moved aside; time.Now when nil.
	Now func() time.Time
}

// Result is what Run did.
type Result struct {
	// Step is the final decision: Join or Restart.
	Step Step
	Env  Env
	// MovedAside is where a stale data dir went, empty when none was.
	MovedAside string
}

// Run waits until this node may start etcd and writes the environment file for it. It
// returns an error, having touched nothing, when the input is wrong: no name, a peer URL on
// no address of this node, an unreadable data dir, or a member list that cannot be read at
// the first attempt (no reachable endpoint, a rejected certificate). Later failures to read
// the list are reported and retried until ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Name == "" || cfg.DataDir == "" || cfg.EnvFile == "" || cfg.Members == nil {
		return Result{}, errors.New("a member name, a data dir, an env file and the running members' endpoints are all required")
	}
	if err := CheckLocal(cfg.PeerURL); err != nil {
		return Result{}, err
	}
	dataID, err := DataMember(cfg.DataDir)
	if err != nil {
		return Result{}, fmt.Errorf("the data dir cannot be read, nothing was changed: %w", err)
	}
	members, err := cfg.Members.Members(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("cannot read the member list, nothing was changed: %w", err)
	}
	var res Result
	last := ""
	lastAt := time.Time{}
	for {
		step := Decide(Input{Members: members, PeerURL: cfg.PeerURL, DataID: dataID})
		switch step.Kind {
		case Refuse:
			return res, errors.New(step.Reason)
		case SetAside:
			to, err := MoveAside(cfg.DataDir, cfg.Now())
			if err != nil {
				return res, fmt.Errorf("%s; %w", step.Reason, err)
			}
			res.MovedAside = to
			fmt.Fprintf(cfg.Out, "%s: moved %s to %s (kept, not deleted); this node starts as a new member\n", step.Reason, cfg.DataDir, to)
			dataID = 0
			continue
		case Join, Restart:
			res.Step = step
			res.Env = Env{Name: cfg.Name, DataDir: cfg.DataDir, PeerURL: cfg.PeerURL,
				InitialCluster: InitialCluster(members, step.Member.ID, cfg.Name), State: "existing"}
			if err := WriteEnv(cfg.EnvFile, res.Env); err != nil {
				return res, fmt.Errorf("write %s: %w", cfg.EnvFile, err)
			}
			fmt.Fprintf(cfg.Out, "%s; wrote %s\n", step.Reason, cfg.EnvFile)
			return res, nil
		}
		if step.Reason != last || time.Since(lastAt) >= 30*time.Second {
			fmt.Fprintln(cfg.Out, step.Reason)
			last, lastAt = step.Reason, time.Now()
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("stopped while %s: %w", step.Reason, ctx.Err())
		case <-time.After(cfg.Interval):
		}
		next, err := cfg.Members.Members(ctx)
		if err != nil {
			msg := "member list failed, retrying: " + err.Error()
			if msg != last {
				fmt.Fprintln(cfg.Out, msg)
				last, lastAt = msg, time.Now()
			}
			continue
		}
		members = next
	}
}
